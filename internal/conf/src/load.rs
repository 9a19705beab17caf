//! Reading the configuration: files, then environment overrides, then validation.

use std::{
    collections::HashMap,
    fs,
    path::{Path, PathBuf},
    time::Duration,
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

    /// Checks what serde cannot: values that parse but make no sense. Each section checks
    /// its own keys; the first bad value found is the error.
    fn validate(&self) -> Result<(), ConfError> {
        self.server.validate()?;
        self.data.validate()?;
        self.logs.validate()?;
        self.auth.validate()?;
        self.compat.validate()?;
        self.edit.validate()?;
        self.market.validate()?;
        self.sensors.validate()?;
        self.batch.validate()?;
        self.chat.validate()?;
        self.game.validate()?;
        self.telemetry.validate()?;
        Ok(())
    }
}

pub(crate) fn bad(key: &'static str, reason: impl Into<String>) -> ConfError {
    ConfError::BadValue {
        key,
        reason: reason.into(),
    }
}

/// The first of `values` (key, value) that is 0, as the error that names its key.
pub(crate) fn all_greater_than_zero<T: Default + PartialEq>(
    values: impl IntoIterator<Item = (&'static str, T)>,
) -> Result<(), ConfError> {
    match values.into_iter().find(|(_, value)| *value == T::default()) {
        Some((key, _)) => Err(bad(key, "must be greater than 0")),
        None => Ok(()),
    }
}

/// The first of `durations` (key, duration) that is zero, as the error that names its key.
pub(crate) fn all_longer_than_zero(
    durations: impl IntoIterator<Item = (&'static str, Duration)>,
) -> Result<(), ConfError> {
    match durations
        .into_iter()
        .find(|(_, duration)| duration.is_zero())
    {
        Some((key, _)) => Err(bad(key, "must be longer than 0s")),
        None => Ok(()),
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
