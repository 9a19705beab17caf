//! The process log: human-readable text or JSON lines, filtered by `RUST_LOG` or `log.level`.

use std::io::IsTerminal as _;

use anyhow::Context as _;
use streamhub_conf::{LogConf, LogFormat};
use tracing_subscriber::{EnvFilter, fmt};

/// Installs the global subscriber. `RUST_LOG`, when set, wins over `log.level`.
pub fn init_logging(conf: &LogConf) -> anyhow::Result<()> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.is_empty() => EnvFilter::try_new(&directives)
            .with_context(|| format!("RUST_LOG: invalid filter {directives:?}"))?,
        _ => EnvFilter::try_new(&conf.level)
            .with_context(|| format!("config key log.level: invalid filter {:?}", conf.level))?,
    };
    // Colours only for a person at a terminal, never in files or collectors.
    let builder = fmt()
        .with_env_filter(filter)
        .with_target(true)
        .with_ansi(std::io::stdout().is_terminal());
    let installed = match conf.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    installed.map_err(|err| anyhow::anyhow!("installing the log subscriber: {err}"))
}
