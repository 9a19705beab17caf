//! `telemetry` and `server.metrics`: where traces and metrics go. Both are off by default, so
//! a plain start exports nothing and pays for nothing beyond the log.

use std::{net::SocketAddr, time::Duration};

use serde::{Deserialize, Deserializer, de::Error as _};

use crate::load::{ConfError, bad};

/// `server.metrics`: the Prometheus text endpoint.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConf {
    /// Where `GET /metrics` is served, `HOST:PORT`; empty (the default) serves nothing.
    #[serde(deserialize_with = "optional_addr")]
    pub addr: Option<SocketAddr>,
}

/// `telemetry`: OpenTelemetry export.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConf {
    /// `service.name` of every exported span and metric.
    pub service_name: String,
    pub otlp: OtlpConf,
}

impl Default for TelemetryConf {
    fn default() -> Self {
        Self {
            service_name: "streamhub".to_owned(),
            otlp: OtlpConf::default(),
        }
    }
}

/// `telemetry.otlp`: export of traces and metrics over OTLP/gRPC.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OtlpConf {
    /// The collector's OTLP/gRPC address, `http://HOST:4317`; empty (the default) exports
    /// nothing.
    pub endpoint: String,
    /// How often metrics, and the spans finished since the last push, are sent to the
    /// collector.
    #[serde(deserialize_with = "crate::duration::deserialize")]
    pub export_interval: Duration,
    /// Fraction of traces started here that are recorded, 0.0 to 1.0. A call that arrives with
    /// a `traceparent` follows its caller's decision instead.
    pub sampling_ratio: f64,
}

impl Default for OtlpConf {
    fn default() -> Self {
        Self {
            endpoint: String::new(),
            export_interval: Duration::from_secs(10),
            sampling_ratio: 1.0,
        }
    }
}

impl TelemetryConf {
    pub(crate) fn validate(&self) -> Result<(), ConfError> {
        if self.service_name.trim().is_empty() {
            return Err(bad("telemetry.service_name", "must not be empty"));
        }
        let endpoint = &self.otlp.endpoint;
        let is_url = endpoint.starts_with("http://") || endpoint.starts_with("https://");
        if !endpoint.is_empty() && !is_url {
            return Err(bad(
                "telemetry.otlp.endpoint",
                format!(
                    "{endpoint:?} must start with http:// or https:// (e.g. http://localhost:4317)"
                ),
            ));
        }
        if self.otlp.export_interval.is_zero() {
            return Err(bad(
                "telemetry.otlp.export_interval",
                "must be longer than 0s",
            ));
        }
        let ratio = self.otlp.sampling_ratio;
        if !(0.0..=1.0).contains(&ratio) {
            return Err(bad(
                "telemetry.otlp.sampling_ratio",
                format!("{ratio} must be between 0.0 and 1.0"),
            ));
        }
        Ok(())
    }
}

/// An address, or nothing when the value is empty (so an environment override can turn the
/// endpoint off again).
fn optional_addr<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<SocketAddr>, D::Error> {
    let text = Option::<String>::deserialize(deserializer)?.unwrap_or_default();
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|err| {
        D::Error::custom(format!(
            "invalid address {text:?} ({err}); write it like 0.0.0.0:9090"
        ))
    })
}
