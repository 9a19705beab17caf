//! Reading the configuration: files, then environment overrides, then validation.

use std::{
    collections::HashMap,
    fs,
    path::{Path, PathBuf},
};

use config::{Environment, File, FileFormat};

use crate::Config;

/// Prefix of environment overrides: `STREAMHUB__SERVER__GRPC__ADDR` sets `server.grpc.addr`.
pub const ENV_PREFIX: &str = "STREAMHUB";

/// Why the configuration could not be loaded. Each message is one line naming the file or key.
#[derive(Debug, thiserror::Error)]
pub enum ConfError {
    #[error("config path {path}: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    #[error("config: {0}")]
    Invalid(String),
    #[error("config key {key}: {reason}")]
    BadValue { key: &'static str, reason: String },
}

impl Config {
    /// Loads `path` (a YAML file, or a directory whose `*.yaml`/`*.yml` files are merged in
    /// name order) and overlays the `STREAMHUB__…` entries of `env`. Taking the environment as
    /// a map keeps tests free of process-global state; `main` passes `std::env::vars()`.
    pub fn load(
        path: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfError> {
        let mut builder = config::Config::builder();
        for file in config_files(path)? {
            // Read the file ourselves so an unreadable file is reported with its path and the
            // OS reason, not as a generic "not found".
            let text = fs::read_to_string(&file).map_err(|err| ConfError::Unreadable {
                path: file.clone(),
                reason: err.to_string(),
            })?;
            // Parsed file by file so a YAML syntax error names its file.
            let layer = config::Config::builder()
                .add_source(File::from_str(&text, FileFormat::Yaml))
                .build()
                .map_err(|err| ConfError::Unreadable {
                    path: file.clone(),
                    reason: one_line(&err.to_string()),
                })?;
            builder = builder.add_source(layer);
        }
        let env: HashMap<String, String> = env
            .into_iter()
            .filter(|(key, _)| key.starts_with(&format!("{ENV_PREFIX}__")))
            .collect();
        let config = builder
            .add_source(
                Environment::with_prefix(ENV_PREFIX)
                    .prefix_separator("__")
                    .separator("__")
                    .try_parsing(true)
                    .source(Some(env)),
            )
            .build()
            .and_then(config::Config::try_deserialize::<Config>)
            .map_err(|err| ConfError::Invalid(one_line(&err.to_string())))?;
        config.validate()?;
        Ok(config)
    }

    /// Parses one YAML document, without files or environment: what a fuzzer or a property
    /// test drives. Every problem is one line, as with [`Config::load`].
    pub fn from_yaml(text: &str) -> Result<Self, ConfError> {
        let config = config::Config::builder()
            .add_source(File::from_str(text, FileFormat::Yaml))
            .build()
            .and_then(config::Config::try_deserialize::<Config>)
            .map_err(|err| ConfError::Invalid(one_line(&err.to_string())))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what serde cannot: values that parse but make no sense.
    fn validate(&self) -> Result<(), ConfError> {
        let grpc = &self.server.grpc;
        let positive = [
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
            (
                "data.database.max_connections",
                u64::from(self.data.database.max_connections),
            ),
            ("logs.max_entries", self.logs.max_entries),
            (
                "data.storage.max_file_bytes",
                self.data.storage.max_file_bytes,
            ),
            ("logs.live_buffer", self.logs.live_buffer as u64),
        ];
        for (key, value) in positive {
            if value == 0 {
                return Err(bad(key, "must be greater than 0"));
            }
        }
        let durations = [
            ("server.grpc.keepalive_interval", grpc.keepalive_interval),
            ("server.grpc.keepalive_timeout", grpc.keepalive_timeout),
            (
                "data.database.busy_timeout",
                self.data.database.busy_timeout,
            ),
            ("logs.retention", self.logs.retention),
            ("data.storage.resume_ttl", self.data.storage.resume_ttl),
            (
                "data.storage.sweep_interval",
                self.data.storage.sweep_interval,
            ),
            ("logs.retention_interval", self.logs.retention_interval),
        ];
        for (key, value) in durations {
            if value.is_zero() {
                return Err(bad(key, "must be longer than 0s"));
            }
        }
        if !self.data.database.source.starts_with("sqlite:") {
            return Err(bad(
                "data.database.source",
                format!(
                    "{:?} is not supported; use sqlite://PATH",
                    self.data.database.source
                ),
            ));
        }
        // tokio's broadcast channel refuses larger capacities; far below that, memory is the limit.
        if self.logs.live_buffer > MAX_LIVE_BUFFER {
            return Err(bad(
                "logs.live_buffer",
                format!("must be at most {MAX_LIVE_BUFFER}"),
            ));
        }
        if self.data.storage.root.as_os_str().is_empty() {
            return Err(bad("data.storage.root", "must not be empty"));
        }
        if self.server.limits.max_streams_per_method == 0 {
            return Err(bad(
                "server.limits.max_streams_per_method",
                "must be greater than 0",
            ));
        }
        let tls = &self.server.grpc.tls;
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
        self.auth.validate()?;
        self.compat.validate()?;
        self.edit.validate()?;
        self.validate_market_sensors_batch()?;
        Ok(())
    }

    fn validate_market_sensors_batch(&self) -> Result<(), ConfError> {
        let market = &self.market;
        let sensors = &self.sensors;
        let batch = &self.batch;
        let positive = [
            (
                "market.max_symbols_per_request",
                market.max_symbols_per_request,
            ),
            ("market.max_symbols", market.max_symbols),
            ("sensors.max_sensors", sensors.max_sensors),
            ("batch.max_item_bytes", batch.max_item_bytes),
            ("batch.max_items", batch.max_items),
        ];
        for (key, value) in positive {
            if value == 0 {
                return Err(bad(key, "must be greater than 0"));
            }
        }
        if market.min_interval.is_zero() {
            return Err(bad("market.min_interval", "must be longer than 0s"));
        }
        if market.default_interval < market.min_interval {
            return Err(bad(
                "market.default_interval",
                format!(
                    "{:?} is shorter than market.min_interval ({:?})",
                    market.default_interval, market.min_interval
                ),
            ));
        }
        let ranges = [
            (
                "sensors.temperature_min",
                sensors.temperature_min,
                sensors.temperature_max,
            ),
            (
                "sensors.humidity_min",
                sensors.humidity_min,
                sensors.humidity_max,
            ),
            (
                "sensors.pressure_min",
                sensors.pressure_min,
                sensors.pressure_max,
            ),
        ];
        for (key, min, max) in ranges {
            if !(min.is_finite() && max.is_finite() && min <= max) {
                return Err(bad(
                    key,
                    format!("{min} must be finite and at most the matching _max ({max})"),
                ));
            }
        }
        self.chat.validate()?;
        self.game.validate()?;
        self.telemetry.validate()?;
        Ok(())
    }
}

/// Upper bound of `logs.live_buffer` (entries held in memory for live followers).
const MAX_LIVE_BUFFER: usize = 1 << 20;

pub(crate) fn bad(key: &'static str, reason: impl Into<String>) -> ConfError {
    ConfError::BadValue {
        key,
        reason: reason.into(),
    }
}

/// The files that make up the configuration at `path`, in merge order.
fn config_files(path: &Path) -> Result<Vec<PathBuf>, ConfError> {
    let unreadable = |err: std::io::Error| ConfError::Unreadable {
        path: path.to_path_buf(),
        reason: err.to_string(),
    };
    if !fs::metadata(path).map_err(unreadable)?.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = Vec::new();
    for entry in fs::read_dir(path).map_err(unreadable)? {
        let file = entry.map_err(unreadable)?.path();
        if file
            .extension()
            .is_some_and(|ext| ext == "yaml" || ext == "yml")
        {
            files.push(file);
        }
    }
    if files.is_empty() {
        return Err(ConfError::Unreadable {
            path: path.to_path_buf(),
            reason: "directory holds no *.yaml file".to_owned(),
        });
    }
    files.sort();
    Ok(files)
}

/// Folds a multi-line parser message into the one line start-up promises.
fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}
