//! `streamhub -conf PATH`: load the configuration, start the server, stop on SIGTERM/SIGINT.

use std::{path::PathBuf, process::ExitCode};

use streamhub::{Application, init_logging};
use streamhub_conf::Config;

const USAGE: &str = "usage: streamhub [-conf PATH]

  -conf PATH   a YAML file, or a directory whose *.yaml files are merged (default: configs)

Environment variables STREAMHUB__<SECTION>__<KEY> override the file,
e.g. STREAMHUB__SERVER__GRPC__ADDR=127.0.0.1:9100.";

/// What the command line asked for.
enum Command {
    Serve { conf: PathBuf },
    Help,
    Version,
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Command, String> {
    let mut conf = PathBuf::from("configs");
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
    Ok(Command::Serve { conf })
}

fn main() -> ExitCode {
    let conf_path = match parse_args(std::env::args().skip(1)) {
        Ok(Command::Serve { conf }) => conf,
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

fn serve(conf_path: PathBuf) -> anyhow::Result<()> {
    let config = Config::load(&conf_path, std::env::vars())?;
    init_logging(&config.log)?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async {
            let app = Application::build(config).await?;
            app.run(shutdown_signal()).await
        })
}

/// Completes on the first SIGTERM or SIGINT.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(err) => {
                tracing::warn!(%err, "cannot listen for SIGTERM; only SIGINT stops the server");
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
    tracing::info!("shutdown signal received");
}
