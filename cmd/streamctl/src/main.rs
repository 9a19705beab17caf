//! streamctl: the command-line client of streamhub, one subcommand per streaming RPC.
//!
//! A person gets readable lines (`[2026-01-02 15:04:05] ann: hello`), progress bars on a
//! terminal and followers that survive a server restart; a script gets `--json` (one object
//! per line on stdout) and exit codes it can rely on: 0 success, 1 the server answered with an
//! error (or a local file failed; the message is on stderr), 2 a usage error (bad flags or
//! unusable input).

mod batch;
mod chat;
mod connect;
mod edit;
mod feed;
mod files;
mod game;
mod health;
mod input;
mod logs;
mod output;
mod progress;
mod reconnect;
mod sensors;
mod stocks;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::{connect::ConnectArgs, output::Output};

/// The command-line client of streamhub.
#[derive(Parser)]
#[command(name = "streamctl", version, about, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    connect: ConnectArgs,
    /// Print one JSON object per line on stdout, for scripts.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Ask whether the server (or one of its services) is serving.
    Health(health::HealthArgs),
    /// Watch the shared market's prices.
    Stocks(stocks::StocksArgs),
    /// Read stored log entries, optionally following new ones.
    Logs(logs::LogsArgs),
    /// Store log entries read from standard input (plain lines or JSON lines).
    PushLogs(logs::PushLogsArgs),
    /// Upload a file; re-running the same command resumes an interrupted upload.
    Upload(files::UploadArgs),
    /// Download a stored file by id or name; re-running the same command resumes from PATH.part.
    Download(files::DownloadArgs),
    /// List the stored files, optionally only those whose name starts with a prefix.
    Files(files::ListArgs),
    /// Delete a stored file by id or name (the newest file of that name).
    Rm(files::RemoveArgs),
    /// Send sensor readings (CSV or JSON lines from standard input, or simulated).
    Sensors(sensors::SensorsArgs),
    /// Validate the items of a JSON-lines file.
    Batch(batch::BatchArgs),
    /// Chat in a room: each line of standard input is sent.
    Chat(chat::ChatArgs),
    /// Play in a game session with typed commands (`move 3,4`, `attack bob`, `defend`).
    Game(game::GameArgs),
    /// Edit a shared document with typed commands (`insert 0 hello`, `delete 0 5`).
    Edit(edit::EditArgs),
    /// Follow the log store as a resumable feed of JSON entries.
    Feed(feed::FeedArgs),
}

/// Why a command did not succeed; each kind has its exit code.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Bad flags or unusable input (exit 2).
    Usage(String),
    /// The server answered with an error status (exit 1).
    Server(tonic::Status),
    /// Something on this side failed: a file, a checksum (exit 1).
    Local(anyhow::Error),
    /// Whoever read standard output has gone (`streamctl feed | head`): stop quietly.
    OutputClosed,
}

impl From<tonic::Status> for Failure {
    fn from(status: tonic::Status) -> Self {
        Self::Server(status)
    }
}

impl From<anyhow::Error> for Failure {
    fn from(err: anyhow::Error) -> Self {
        Self::Local(err)
    }
}

/// What every command returns.
pub(crate) type Outcome = Result<(), Failure>;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    // clap prints its own usage errors and exits with 2 (0 for --help and --version).
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) | Err(Failure::OutputClosed) => ExitCode::SUCCESS,
        Err(Failure::Usage(message)) => {
            eprintln!("streamctl: {message}");
            ExitCode::from(2)
        }
        Err(Failure::Server(status)) => {
            // A status made from a transport failure carries its cause (a TLS alert, a
            // reset) only as its error source.
            eprintln!(
                "streamctl: {}: {}",
                streamhub_api::code_name(status.code()),
                connect::with_causes(
                    status.message().to_owned(),
                    std::error::Error::source(&status)
                )
            );
            ExitCode::from(1)
        }
        Err(Failure::Local(err)) => {
            eprintln!("streamctl: {err:#}");
            ExitCode::from(1)
        }
    }
}

async fn run(cli: Cli) -> Outcome {
    let connection = cli.connect.connection()?;
    let output = Output::new(cli.json);
    match cli.command {
        Command::Health(args) => health::run(&connection, &output, args).await,
        Command::Stocks(args) => stocks::run(&connection, &output, args).await,
        Command::Logs(args) => logs::run(&connection, &output, args).await,
        Command::PushLogs(args) => logs::push(&connection, &output, args).await,
        Command::Upload(args) => files::upload(&connection, &output, args).await,
        Command::Download(args) => files::download(&connection, &output, args).await,
        Command::Files(args) => files::list(&connection, &output, args).await,
        Command::Rm(args) => files::remove(&connection, &output, args).await,
        Command::Sensors(args) => sensors::run(&connection, &output, args).await,
        Command::Batch(args) => batch::run(&connection, &output, args).await,
        Command::Chat(args) => chat::run(&connection, &output, args).await,
        Command::Game(args) => game::run(&connection, &output, args).await,
        Command::Edit(args) => edit::run(&connection, &output, args).await,
        Command::Feed(args) => feed::run(&connection, &output, args).await,
    }
}
