//! What the benchmarks share beyond the test kit (`streamhub-testkit`, which starts the server
//! and bounds each step): reading a stream in a hot loop, a process's memory, and clients
//! played by a child process. Each benchmark is its own binary and uses part of it.
#![allow(dead_code, reason = "each benchmark binary uses a different part")]

use std::{fmt, time::Duration};

use streamhub_testkit::bounded;
use tonic::Streaming;

/// The next message of a bench stream. Unbounded, unlike the kit's `next`: a timer per
/// message would weigh on the figures; each step as a whole is bounded instead.
pub(crate) async fn next<T>(inbound: &mut Streaming<T>) -> T {
    inbound
        .message()
        .await
        .expect("no error on a bench stream")
        .expect("the stream stays open")
}

/// Resident and peak memory of this process.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Memory {
    pub(crate) rss_kib: u64,
    pub(crate) hwm_kib: u64,
}

impl Memory {
    /// Read from `/proc/self/status` (zero elsewhere).
    pub(crate) fn now() -> Self {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|kib| kib.parse().ok())
                .unwrap_or(0)
        };
        Self {
            rss_kib: field("VmRSS:"),
            hwm_kib: field("VmHWM:"),
        }
    }
}

impl fmt::Display for Memory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "RSS {:.1} MiB (peak {:.1} MiB)",
            self.rss_kib as f64 / 1024.0,
            self.hwm_kib as f64 / 1024.0
        )
    }
}

/// Clients played by a child process (this executable again, with an environment variable
/// set to the server's endpoint), so that the server's memory is measured without theirs.
pub(crate) struct ChildClients {
    child: std::process::Child,
}

impl ChildClients {
    /// Starts the child with `env` = `endpoint` and waits for its `ready …` line, returned
    /// without the `ready ` prefix.
    pub(crate) async fn start(env: &str, endpoint: &str, limit: Duration) -> (Self, String) {
        use std::io::BufRead as _;

        let mut child =
            std::process::Command::new(std::env::current_exe().expect("this executable"))
                .env(env, endpoint)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("start the child clients");
        let stdout = child.stdout.take().expect("child stdout");
        let ready = bounded(
            limit,
            "the child clients to be ready",
            tokio::task::spawn_blocking(move || {
                std::io::BufReader::new(stdout)
                    .lines()
                    .map_while(Result::ok)
                    .find_map(|line| line.strip_prefix("ready ").map(str::to_owned))
            }),
        )
        .await
        .expect("reader task")
        .expect("the child clients report ready");
        (Self { child }, ready)
    }

    /// Closes the child's stdin, which tells it to drop its clients and exit, and waits.
    pub(crate) async fn stop(mut self, limit: Duration) {
        drop(self.child.stdin.take());
        let mut child = self.child;
        let status = bounded(
            limit,
            "the child clients to exit",
            tokio::task::spawn_blocking(move || child.wait()),
        )
        .await
        .expect("wait task")
        .expect("child status");
        assert!(status.success(), "the child clients failed: {status}");
    }
}

/// In the child: reports `ready {report}` to the parent, then holds `clients` until the
/// parent closes stdin.
pub(crate) async fn hold_until_parent_stops<T: Send + 'static>(report: &str, clients: T) {
    use std::io::Write as _;

    let mut stdout = std::io::stdout();
    writeln!(stdout, "ready {report}").expect("report to the parent");
    stdout.flush().expect("report to the parent");
    tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
    })
    .await
    .expect("stdin task");
    drop(clients);
}
