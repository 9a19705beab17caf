//! The Prometheus text endpoint: `GET /metrics` on `server.metrics.addr`.
//!
//! The OpenTelemetry SDK collects on demand through a [`ManualReader`]; each scrape renders
//! what it collected in the Prometheus text exposition format (version 0.0.4). A hand-written
//! renderer of a few dozen lines spares the `opentelemetry-prometheus` and `prometheus`
//! crates. The HTTP side is axum, which tonic already builds.
//!
//! Names follow the OpenTelemetry-to-Prometheus conventions: dots become underscores, the unit
//! is appended (`_seconds`, `_bytes`), and monotonic sums end in `_total`.

use std::{
    fmt::Write as _,
    sync::{Arc, Weak},
    time::Duration,
};

use axum::{Router, http::header, response::IntoResponse, routing::get};
use opentelemetry::{KeyValue, Value};
use opentelemetry_sdk::{
    error::OTelSdkResult,
    metrics::{
        InstrumentKind, ManualReader, Pipeline, Temporality,
        data::{AggregatedMetrics, Metric, MetricData, ResourceMetrics},
        reader::MetricReader,
    },
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The reader to register on the meter provider; its [`MetricsScraper`] collects through it.
#[derive(Debug, Clone)]
pub struct ScrapeReader(Arc<ManualReader>);

/// Collects and renders the metrics of one meter provider. Cheap to clone.
#[derive(Debug, Clone)]
pub struct MetricsScraper(Arc<ManualReader>);

impl ScrapeReader {
    /// A reader (cumulative, as Prometheus expects) and the scraper that reads it.
    pub fn new() -> (Self, MetricsScraper) {
        let reader = Arc::new(ManualReader::builder().build());
        (Self(Arc::clone(&reader)), MetricsScraper(reader))
    }
}

impl MetricReader for ScrapeReader {
    fn register_pipeline(&self, pipeline: Weak<Pipeline>) {
        self.0.register_pipeline(pipeline);
    }

    fn collect(&self, rm: &mut ResourceMetrics) -> OTelSdkResult {
        self.0.collect(rm)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.0.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }

    fn temporality(&self, kind: InstrumentKind) -> Temporality {
        self.0.temporality(kind)
    }
}

impl MetricsScraper {
    /// Collects every instrument now (running the observable callbacks) and renders the
    /// Prometheus text format.
    pub fn render(&self) -> Result<String, String> {
        let mut collected = ResourceMetrics::default();
        self.0
            .collect(&mut collected)
            .map_err(|err| err.to_string())?;
        let mut text = String::new();
        for scope in collected.scope_metrics() {
            for metric in scope.metrics() {
                render_metric(&mut text, metric);
            }
        }
        Ok(text)
    }
}

/// Serves `GET /metrics` on `listener` until `stopping` fires.
pub async fn serve_metrics(
    listener: TcpListener,
    scraper: MetricsScraper,
    stopping: CancellationToken,
) -> std::io::Result<()> {
    let app = Router::new().route(
        "/metrics",
        get(move || {
            let scraper = scraper.clone();
            async move {
                match scraper.render() {
                    Ok(text) => (
                        [(
                            header::CONTENT_TYPE,
                            "text/plain; version=0.0.4; charset=utf-8",
                        )],
                        text,
                    )
                        .into_response(),
                    Err(err) => {
                        tracing::warn!(%err, "collecting metrics failed");
                        (
                            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                            "collecting metrics failed\n",
                        )
                            .into_response()
                    }
                }
            }
        }),
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(stopping.cancelled_owned())
        .await
}

fn render_metric(out: &mut String, metric: &Metric) {
    match metric.data() {
        AggregatedMetrics::F64(data) => render_data(out, metric, data),
        AggregatedMetrics::U64(data) => render_data(out, metric, data),
        AggregatedMetrics::I64(data) => render_data(out, metric, data),
    }
}

/// A sample value as Prometheus writes it.
trait SampleValue: Copy {
    fn write(self, out: &mut String);
}

impl SampleValue for f64 {
    fn write(self, out: &mut String) {
        write_float(out, self);
    }
}

impl SampleValue for u64 {
    fn write(self, out: &mut String) {
        let _ = write!(out, "{self}");
    }
}

impl SampleValue for i64 {
    fn write(self, out: &mut String) {
        let _ = write!(out, "{self}");
    }
}

fn write_float(out: &mut String, value: f64) {
    if value.is_nan() {
        out.push_str("NaN");
    } else if value.is_infinite() {
        out.push_str(if value > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        let _ = write!(out, "{value}");
    }
}

fn render_data<T: SampleValue>(out: &mut String, metric: &Metric, data: &MetricData<T>) {
    let base = metric_name(metric.name(), metric.unit());
    let (kind, name) = match data {
        MetricData::Sum(sum) if sum.is_monotonic() => ("counter", format!("{base}_total")),
        MetricData::Sum(_) | MetricData::Gauge(_) => ("gauge", base),
        MetricData::Histogram(_) => ("histogram", base),
        // Not created by streamhub's instruments; nothing sensible to render as text.
        MetricData::ExponentialHistogram(_) => return,
    };
    let _ = writeln!(out, "# HELP {name} {}", escape_help(metric.description()));
    let _ = writeln!(out, "# TYPE {name} {kind}");
    match data {
        MetricData::Sum(sum) => {
            for point in sum.data_points() {
                sample(out, &name, point.attributes(), None, |out| {
                    point.value().write(out);
                });
            }
        }
        MetricData::Gauge(gauge) => {
            for point in gauge.data_points() {
                sample(out, &name, point.attributes(), None, |out| {
                    point.value().write(out);
                });
            }
        }
        MetricData::Histogram(histogram) => {
            for point in histogram.data_points() {
                let mut cumulative = 0;
                let bounds: Vec<f64> = point.bounds().collect();
                for (index, count) in point.bucket_counts().enumerate() {
                    cumulative += count;
                    let le = bounds.get(index).copied().unwrap_or(f64::INFINITY);
                    let bucket = format!("{name}_bucket");
                    sample(out, &bucket, point.attributes(), Some(le), |out| {
                        let _ = write!(out, "{cumulative}");
                    });
                }
                sample(
                    out,
                    &format!("{name}_sum"),
                    point.attributes(),
                    None,
                    |out| {
                        point.sum().write(out);
                    },
                );
                sample(
                    out,
                    &format!("{name}_count"),
                    point.attributes(),
                    None,
                    |out| {
                        let _ = write!(out, "{}", point.count());
                    },
                );
            }
        }
        MetricData::ExponentialHistogram(_) => {}
    }
}

/// One line: `name{labels} value`.
fn sample<'a>(
    out: &mut String,
    name: &str,
    attributes: impl Iterator<Item = &'a KeyValue>,
    le: Option<f64>,
    value: impl FnOnce(&mut String),
) {
    out.push_str(name);
    let mut separator = '{';
    for attribute in attributes {
        out.push(separator);
        separator = ',';
        push_name(out, attribute.key.as_str());
        out.push_str("=\"");
        push_label_value(out, &attribute.value);
        out.push('"');
    }
    if let Some(le) = le {
        out.push(separator);
        separator = ',';
        out.push_str("le=\"");
        write_float(out, le);
        out.push('"');
    }
    if separator == ',' {
        out.push('}');
    }
    out.push(' ');
    value(out);
    out.push('\n');
}

/// The Prometheus name of an instrument: `streamhub.rpc.duration` in `s` becomes
/// `streamhub_rpc_duration_seconds`.
fn metric_name(name: &str, unit: &str) -> String {
    let mut out = String::with_capacity(name.len() + 8);
    push_name(&mut out, name);
    let suffix = match unit {
        "s" => "_seconds",
        "ms" => "_milliseconds",
        "By" => "_bytes",
        _ => "",
    };
    if !out.ends_with(suffix) {
        out.push_str(suffix);
    }
    out
}

/// Writes `name` with every character outside `[a-zA-Z0-9_]` replaced by `_` (and a leading
/// digit prefixed), as metric and label names require.
fn push_name(out: &mut String, name: &str) {
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        out.push('_');
    }
    out.extend(
        name.chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }),
    );
}

fn push_label_value(out: &mut String, value: &Value) {
    for c in value.as_str().chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use opentelemetry::metrics::MeterProvider as _;
    use opentelemetry_sdk::metrics::SdkMeterProvider;

    use super::*;

    #[test]
    fn counters_gauges_and_histograms_render_as_prometheus_text() {
        let (reader, scraper) = ScrapeReader::new();
        let provider = SdkMeterProvider::builder().with_reader(reader).build();
        let meter = provider.meter("test");
        let calls = meter
            .u64_counter("rpc.calls")
            .with_description("Calls")
            .build();
        calls.add(3, &[KeyValue::new("rpc.method", "a/\"b\"")]);
        let open = meter.i64_up_down_counter("open").build();
        open.add(2, &[]);
        let took = meter
            .f64_histogram("took")
            .with_unit("s")
            .with_boundaries(vec![0.1, 1.0])
            .build();
        took.record(0.05, &[]);
        took.record(0.5, &[]);
        took.record(7.0, &[]);

        let text = scraper.render().expect("collects");
        for line in [
            "# TYPE rpc_calls_total counter",
            "# HELP rpc_calls_total Calls",
            r#"rpc_calls_total{rpc_method="a/\"b\""} 3"#,
            "# TYPE open gauge",
            "open 2",
            "# TYPE took_seconds histogram",
            r#"took_seconds_bucket{le="0.1"} 1"#,
            r#"took_seconds_bucket{le="1"} 2"#,
            r#"took_seconds_bucket{le="+Inf"} 3"#,
            "took_seconds_sum 7.55",
            "took_seconds_count 3",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line:?} missing from\n{text}"
            );
        }
    }
}
