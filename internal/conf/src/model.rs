//! The configuration tree. Field docs are the reference; `configs/config.yaml` repeats them.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use serde::Deserialize;

pub use crate::logs::LogsConf;
use crate::{
    ChatConf, GameConf,
    load::{ConfError, all_greater_than_zero, all_longer_than_zero, bad},
};

/// The whole configuration. Every section is optional in the file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConf,
    pub data: DataConf,
    pub log: ProcessLogConf,
    pub compat: crate::CompatConf,
    pub edit: crate::EditConf,
    pub market: crate::MarketConf,
    pub sensors: crate::SensorsConf,
    pub batch: crate::BatchConf,
    pub logs: LogsConf,
    pub chat: ChatConf,
    pub game: GameConf,
    pub auth: crate::AuthConf,
    pub telemetry: crate::TelemetryConf,
}

/// `server`: how the process listens.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConf {
    pub grpc: GrpcConf,
    pub limits: ServerLimitsConf,
    pub metrics: crate::MetricsConf,
}

impl ServerConf {
    pub(crate) fn validate(&self) -> Result<(), ConfError> {
        let grpc = &self.grpc;
        all_greater_than_zero([
            (
                "server.grpc.max_decoding_message_size",
                grpc.max_decoding_message_size as u64,
            ),
            (
                "server.grpc.max_encoding_message_size",
                grpc.max_encoding_message_size as u64,
            ),
            (
                "server.grpc.max_concurrent_streams",
                u64::from(grpc.max_concurrent_streams),
            ),
        ])?;
        all_longer_than_zero([
            ("server.grpc.keepalive_interval", grpc.keepalive_interval),
            ("server.grpc.keepalive_timeout", grpc.keepalive_timeout),
        ])?;
        if self.limits.max_streams_per_method == 0 {
            return Err(bad(
                "server.limits.max_streams_per_method",
                "must be greater than 0",
            ));
        }
        let tls = &grpc.tls;
        let set = |path: &Path| !path.as_os_str().is_empty();
        if set(&tls.cert) != set(&tls.key) {
            return Err(bad(
                "server.grpc.tls.key",
                "server.grpc.tls.cert and server.grpc.tls.key go together: set both or neither",
            ));
        }
        if set(&tls.client_ca) && !set(&tls.cert) {
            return Err(bad(
                "server.grpc.tls.client_ca",
                "mutual TLS needs server.grpc.tls.cert and server.grpc.tls.key too",
            ));
        }
        Ok(())
    }
}

/// `server.limits`: bounds the server enforces around every call.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerLimitsConf {
    /// Calls open at once per RPC method, over all connections; one more gets
    /// `RESOURCE_EXHAUSTED`. Health checks are not counted.
    pub max_streams_per_method: usize,
}

impl Default for ServerLimitsConf {
    fn default() -> Self {
        Self {
            max_streams_per_method: 10_000,
        }
    }
}

/// `server.grpc.tls`: TLS for the gRPC listener. Empty paths (the default) serve plaintext.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConf {
    /// PEM file of the server's certificate chain; with `key`, turns TLS on.
    pub cert: PathBuf,
    /// PEM file of the server certificate's private key.
    pub key: PathBuf,
    /// PEM file of the CAs whose client certificates are accepted; set, it requires every
    /// client to present one (mutual TLS).
    pub client_ca: PathBuf,
}

impl TlsConf {
    /// True when the listener speaks TLS.
    pub fn enabled(&self) -> bool {
        !self.cert.as_os_str().is_empty()
    }
}

/// `server.grpc`: the gRPC listener and its HTTP/2 limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GrpcConf {
    /// Address to listen on, `HOST:PORT`.
    pub addr: SocketAddr,
    /// Largest message the server accepts, in bytes; larger ones get `RESOURCE_EXHAUSTED`.
    pub max_decoding_message_size: usize,
    /// Largest message the server sends, in bytes.
    pub max_encoding_message_size: usize,
    /// HTTP/2 `SETTINGS_MAX_CONCURRENT_STREAMS`: open calls per connection.
    pub max_concurrent_streams: u32,
    /// Interval of HTTP/2 keepalive pings to each client.
    #[serde(deserialize_with = "crate::duration::deserialize")]
    pub keepalive_interval: Duration,
    /// How long a keepalive ping may go unanswered before the connection is closed.
    #[serde(deserialize_with = "crate::duration::deserialize")]
    pub keepalive_timeout: Duration,
    /// How long shutdown waits for open calls to finish before closing them.
    #[serde(deserialize_with = "crate::duration::deserialize")]
    pub shutdown_grace: Duration,
    /// TLS and mutual TLS; off by default.
    pub tls: TlsConf,
}

impl Default for GrpcConf {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([0, 0, 0, 0], 9000)),
            max_decoding_message_size: 4 * 1024 * 1024,
            max_encoding_message_size: 4 * 1024 * 1024,
            max_concurrent_streams: 256,
            keepalive_interval: Duration::from_secs(30),
            keepalive_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(10),
            tls: TlsConf::default(),
        }
    }
}

/// `data`: where state lives.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataConf {
    pub database: DatabaseConf,
    pub storage: StorageConf,
}

impl DataConf {
    pub(crate) fn validate(&self) -> Result<(), ConfError> {
        all_greater_than_zero([
            (
                "data.database.max_connections",
                u64::from(self.database.max_connections),
            ),
            ("data.storage.max_file_bytes", self.storage.max_file_bytes),
        ])?;
        all_longer_than_zero([
            ("data.database.busy_timeout", self.database.busy_timeout),
            ("data.storage.resume_ttl", self.storage.resume_ttl),
            ("data.storage.sweep_interval", self.storage.sweep_interval),
        ])?;
        if !self.database.source.starts_with("sqlite:") {
            return Err(bad(
                "data.database.source",
                format!(
                    "{:?} is not supported; use sqlite://PATH",
                    self.database.source
                ),
            ));
        }
        if self.storage.root.as_os_str().is_empty() {
            return Err(bad("data.storage.root", "must not be empty"));
        }
        Ok(())
    }
}

/// `data.database`: the SQL database.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConf {
    /// Connection URL; `sqlite://PATH` creates the file (and its directory) on first start.
    pub source: String,
    /// Size of the connection pool.
    pub max_connections: u32,
    /// How long a statement waits for a lock held by another connection.
    #[serde(deserialize_with = "crate::duration::deserialize")]
    pub busy_timeout: Duration,
}

impl Default for DatabaseConf {
    fn default() -> Self {
        Self {
            source: "sqlite://data/streamhub.db".to_owned(),
            max_connections: 8,
            busy_timeout: Duration::from_secs(5),
        }
    }
}

/// `data.storage`: the file store.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConf {
    /// Directory holding uploaded files; created on first start.
    pub root: PathBuf,
    /// Largest file UploadFile accepts, in bytes; larger → `RESOURCE_EXHAUSTED`.
    pub max_file_bytes: u64,
    /// How long a resumable upload (one with `upload_id`) is kept after its last progress.
    #[serde(deserialize_with = "crate::duration::deserialize")]
    pub resume_ttl: Duration,
    /// How often expired resumable uploads are removed.
    #[serde(deserialize_with = "crate::duration::deserialize")]
    pub sweep_interval: Duration,
}

impl Default for StorageConf {
    fn default() -> Self {
        Self {
            root: PathBuf::from("data/files"),
            max_file_bytes: 1024 * 1024 * 1024,
            resume_ttl: Duration::from_secs(24 * 60 * 60),
            sweep_interval: Duration::from_secs(60),
        }
    }
}

/// `log`: streamhub's own process log, not the log store behind StreamLogs
/// (`logs`, [`LogsConf`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProcessLogConf {
    /// Filter in `RUST_LOG` syntax (`info`, `streamhub=debug,info`); `RUST_LOG` wins when set.
    pub level: String,
    /// `text` for people, `json` for log collectors.
    pub format: LogFormat,
}

impl Default for ProcessLogConf {
    fn default() -> Self {
        Self {
            level: "info".to_owned(),
            format: LogFormat::Text,
        }
    }
}

/// Output format of the process log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}
