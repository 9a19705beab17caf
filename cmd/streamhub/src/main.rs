//! `streamhub -conf PATH`: load the configuration, start the server, stop on SIGTERM/SIGINT.
//! Two more modes serve deployment: `-check-config` validates a configuration without
//! starting anything, and `-probe ADDR` is a container health check (one gRPC health Check),
//! so an image needs no probe binary of its own.

use std::{path::PathBuf, process::ExitCode};

use streamhub::{Application, Telemetry, init_logging, probe};
use streamhub_conf::Config;

const USAGE: &str = "usage: streamhub [-conf PATH] [-check-config] | -probe HOST:PORT

  -conf PATH       a YAML file, or a directory whose *.yaml files are merged (default: configs)
  -check-config    load and validate the configuration, print `config ok`, and exit
  -probe ADDR      ask the gRPC health service at ADDR (HOST:PORT) for the server's status;
                   exit 0 when SERVING, 1 otherwise (for container health checks)

Environment variables STREAMHUB__<SECTION>__<KEY> override the file,
e.g. STREAMHUB__SERVER__GRPC__ADDR=127.0.0.1:9100.";

/// What the command line asked for.
enum Command {
    Serve { conf: PathBuf },
    CheckConfig { conf: PathBuf },
    Probe { addr: String },
    Help,
    Version,
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Command, String> {
    let mut conf = PathBuf::from("configs");
    let mut check_only = false;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        // Kratos spells it `-conf`; the GNU spellings are accepted too.
        match arg.as_str() {
            "-conf" | "--conf" | "-c" => {
                conf = args
                    .next()
                    .ok_or_else(|| format!("{arg} needs a PATH"))?
                    .into();
            }
            "-check-config" | "--check-config" => check_only = true,
            "-probe" | "--probe" => {
                let addr = args
                    .next()
                    .ok_or_else(|| format!("{arg} needs an address HOST:PORT"))?;
                return Ok(Command::Probe { addr });
            }
            "-h" | "-help" | "--help" => return Ok(Command::Help),
            "-version" | "--version" | "-V" => return Ok(Command::Version),
            other => match other
                .strip_prefix("-conf=")
                .or_else(|| other.strip_prefix("--conf="))
            {
                Some(path) => conf = path.into(),
                None => return Err(format!("unknown argument {other:?}")),
            },
        }
    }
    Ok(if check_only {
        Command::CheckConfig { conf }
    } else {
        Command::Serve { conf }
    })
}

fn main() -> ExitCode {
    let conf_path = match parse_args(std::env::args().skip(1)) {
        Ok(Command::Serve { conf }) => conf,
        Ok(Command::CheckConfig { conf }) => return check_config(&conf),
        Ok(Command::Probe { addr }) => return run_probe(&addr),
        Ok(Command::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Ok(Command::Version) => {
            println!("streamhub {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Err(problem) => {
            eprintln!("streamhub: {problem}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match serve(conf_path) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // One line, the whole cause chain: what start-up promises for a bad config.
            eprintln!("streamhub: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Loads and validates the configuration at `path` the way start-up does, without binding
/// anything or opening the database.
fn check_config(path: &std::path::Path) -> ExitCode {
    match Config::load(path, std::env::vars()) {
        Ok(_) => {
            println!("config ok: {}", path.display());
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("streamhub: {err}");
            ExitCode::FAILURE
        }
    }
}

/// One health Check against `addr`: exit 0 when the server answers SERVING.
fn run_probe(addr: &str) -> ExitCode {
    let checked = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| runtime.block_on(probe::check(addr, probe::TIMEOUT)));
    match checked {
        Ok(status) if status == probe::SERVING => {
            println!("{addr}: {status}");
            ExitCode::SUCCESS
        }
        Ok(status) => {
            eprintln!("streamhub: {addr}: {status}");
            ExitCode::FAILURE
        }
        Err(err) => {
            eprintln!("streamhub: probe {addr}: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve(conf_path: PathBuf) -> anyhow::Result<()> {
    let config = Config::load(&conf_path, std::env::vars())?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async {
            // Telemetry first: its tracer joins the log subscriber. The application flushes
            // the exporters when it stops.
            let telemetry = Telemetry::start(&config)?;
            init_logging(&config.log, telemetry.tracer())?;
            let shutdown = shutdown_signal()?;
            let app = Application::build_with(config, telemetry).await?;
            app.run(shutdown).await
        })
}

/// Listens for SIGTERM and SIGINT at once and completes on the first one. Called before the
/// server binds: a signal that arrives once the log says `listening on` must start the graceful
/// shutdown. (Registering on first poll left a window in which SIGTERM killed the process.)
fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()>> {
    #[cfg(unix)]
    {
        use anyhow::Context as _;
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate = signal(SignalKind::terminate()).context("listen for SIGTERM")?;
        let mut interrupt = signal(SignalKind::interrupt()).context("listen for SIGINT")?;
        Ok(async move {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = interrupt.recv() => {}
            }
            tracing::info!("shutdown signal received");
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("shutdown signal received");
        })
    }
}
