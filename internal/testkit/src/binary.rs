//! [`BinaryServer`]: the real `streamhub` executable as a child process, for what only a
//! process shows (signals, a crash, a restart on the same data, the peak memory of the server
//! alone).
//!
//! The kit cannot name the executable: Cargo sets `CARGO_BIN_EXE_streamhub` only for the
//! tests and benchmarks of the package that owns it, so they pass
//! `env!("CARGO_BIN_EXE_streamhub")` in.
//!
//! The child's standard output (its log) and error are read by a thread each: the first
//! `listening on ADDR` line says it is ready and where; every line is kept for the failure
//! message and, with `TEST_LOG` set, echoed into the test's output as it comes. Both pipes
//! closing is how the kit learns that the process exited, without polling.

use std::{
    ffi::OsStr,
    io::{BufRead as _, BufReader, Read},
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::{Arc, Mutex, mpsc},
    time::Duration,
};

use streamhub_api::streaming::streaming_service_client::StreamingServiceClient;
use streamhub_conf::Config;
use tonic::transport::Channel;

use crate::{TEST_LOG, WAIT, log};

/// Writes a config directory for the real binary and returns it, to pass to `-conf`:
/// `00-for-tests.yaml` says in YAML what [`Config::for_tests`]`(data_dir)` says, and
/// `10-test.yaml` holds `overrides` (any YAML; the binary merges the files key by key, so
/// `server:\n  grpc:\n    shutdown_grace: 2s\n` changes the grace and keeps the address).
pub fn write_binary_config(dir: &Path, data_dir: &Path, overrides: &str) -> PathBuf {
    let config = Config::for_tests(data_dir);
    let grpc = &config.server.grpc;
    let base = format!(
        "server:\n  grpc:\n    addr: {addr}\n    shutdown_grace: {grace}s\n\
         data:\n  database:\n    source: {source}\n  storage:\n    root: {root}\n",
        addr = grpc.addr,
        grace = grpc.shutdown_grace.as_secs(),
        source = config.data.database.source,
        root = config.data.storage.root.display(),
    );
    let conf = dir.join("conf");
    std::fs::create_dir_all(&conf).expect("create the config directory");
    std::fs::write(conf.join("00-for-tests.yaml"), base).expect("write the config");
    std::fs::write(conf.join("10-test.yaml"), overrides).expect("write the config");
    conf
}

/// The real server, started by [`BinaryServer::start`]. Dropped while it runs, it is killed; a
/// test that fails (panics) while holding one prints the server's log.
#[derive(Debug)]
pub struct BinaryServer {
    child: Child,
    /// Where the server listens (what followed `listening on` in its log).
    pub addr: SocketAddr,
    log: Log,
    /// Disconnected once both of the child's pipes are closed: it has exited.
    closed: mpsc::Receiver<()>,
    exited: Option<ExitStatus>,
}

impl BinaryServer {
    /// Starts `binary -conf CONFIG` with `envs` set and returns once it logs
    /// `listening on ADDR`. `RUST_LOG` is `TEST_LOG` when that is set, else unset (the
    /// config's `log.level`, `info` by default, applies).
    pub fn start(binary: impl AsRef<OsStr>, config: &Path, envs: &[(&str, &str)]) -> Self {
        let mut command = Command::new(binary);
        command
            .arg("-conf")
            .arg(config)
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        match log::filter() {
            Some(filter) => command.env("RUST_LOG", filter),
            None => command.env_remove("RUST_LOG"),
        };
        let mut child = command.spawn().expect("start the streamhub binary");
        let log = Log::new(child.id());
        let (closed_tx, closed) = mpsc::channel();
        let (listening_tx, listening) = mpsc::channel();
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        log.read(stdout, Some(listening_tx), closed_tx.clone());
        log.read(stderr, None, closed_tx);
        let mut server = Self {
            child,
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
            log,
            closed,
            exited: None,
        };
        server.addr = match listening.recv_timeout(WAIT) {
            Ok(addr) => addr,
            // Panics while `server` is alive: its Drop kills the child and prints its log.
            Err(mpsc::RecvTimeoutError::Timeout) => panic!(
                "the server did not log `listening on ADDR` within {WAIT:?} \
                 (a {TEST_LOG} filter must keep streamhub_server at info)"
            ),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = server.wait_for_exit();
                panic!("the server exited ({status}) before listening")
            }
        };
        server
    }

    /// `http://ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A new connection to the server.
    pub async fn connect(&self) -> Channel {
        crate::connect(&self.url()).await
    }

    /// A `StreamingService` client on a new connection.
    pub async fn streaming(&self) -> StreamingServiceClient<Channel> {
        StreamingServiceClient::new(self.connect().await)
    }

    /// The process id (for `/proc/PID/status`).
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM: the graceful stop. [`BinaryServer::wait_for_exit`] waits for it.
    pub fn terminate(&self) {
        let killed = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(killed.success(), "kill -TERM succeeded");
    }

    /// SIGKILL: no shutdown code runs. Returns once the process is gone.
    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL the server");
        self.exited = Some(self.child.wait().expect("reap the server"));
    }

    /// Waits (at most [`WAIT`]) for the process to exit and returns its status. Blocks the
    /// thread: from async code, use [`BinaryServer::exit`].
    pub fn wait_for_exit(&mut self) -> ExitStatus {
        if let Some(status) = self.exited {
            return status;
        }
        if let Err(mpsc::RecvTimeoutError::Timeout) = self.closed.recv_timeout(WAIT) {
            panic!("the server did not exit within {WAIT:?}");
        }
        // Both pipes closed: the process has ended, or is ending, and `wait` returns at once.
        let status = self.child.wait().expect("reap the server");
        self.exited = Some(status);
        status
    }

    /// [`BinaryServer::wait_for_exit`] off the async runtime (an in-process server or the
    /// test's clients may be running on it).
    pub async fn exit(mut self) -> ExitStatus {
        tokio::task::spawn_blocking(move || self.wait_for_exit())
            .await
            .expect("the wait task")
    }

    /// Everything the server printed so far, one line each.
    pub fn log(&self) -> String {
        self.log.text()
    }
}

impl Drop for BinaryServer {
    fn drop(&mut self) {
        // A test that failed half-way must not leave a server running, and shows its log.
        if self.exited.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() && log::filter().is_none() {
            // The readers may still hold the last lines; the pipes close soon after the exit.
            let _ = self.closed.recv_timeout(Duration::from_secs(1));
            eprintln!(
                "---- log of the streamhub binary (pid {}) ----\n{}---- end of log ----",
                self.child.id(),
                self.log.text()
            );
        }
    }
}

/// The lines a child printed, shared with the threads that read them.
#[derive(Debug, Clone)]
struct Log {
    pid: u32,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Log {
    fn new(pid: u32) -> Self {
        Self {
            pid,
            lines: Arc::default(),
        }
    }

    /// Reads `pipe` to its end on a thread of its own, keeping every line (so the child never
    /// blocks on a full pipe); sends the address of the first `listening on ADDR` line to
    /// `listening`. `closed` is dropped at the end of the pipe.
    fn read(
        &self,
        pipe: impl Read + Send + 'static,
        mut listening: Option<mpsc::Sender<SocketAddr>>,
        closed: mpsc::Sender<()>,
    ) {
        let log = self.clone();
        let echo = log::filter().is_some();
        std::thread::spawn(move || {
            let _closed = closed;
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if echo {
                    // Inherits the test's output capture, like everything the test prints.
                    println!("streamhub[{}] {line}", log.pid);
                }
                if let Some(addr) = listening.as_ref().and_then(|_| listening_addr(&line)) {
                    let _ = listening.take().map(|found| found.send(addr));
                }
                log.lines
                    .lock()
                    .unwrap_or_else(|err| err.into_inner())
                    .push(line);
            }
        });
    }

    fn text(&self) -> String {
        let lines = self.lines.lock().unwrap_or_else(|err| err.into_inner());
        lines.iter().map(|line| format!("{line}\n")).collect()
    }
}

/// The address of a `… listening on ADDR …` line.
fn listening_addr(line: &str) -> Option<SocketAddr> {
    let rest = line.split("listening on ").nth(1)?;
    rest.split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_binary_config_loads_as_config_for_tests_with_the_overrides_merged() {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("data");
        let conf = write_binary_config(
            dir.path(),
            &data,
            "server:\n  grpc:\n    shutdown_grace: 2s\n",
        );
        let loaded = Config::load(&conf, []).expect("the written config loads");
        let expected = Config::for_tests(&data);
        assert_eq!(loaded.server.grpc.addr, expected.server.grpc.addr);
        assert_eq!(loaded.data.database.source, expected.data.database.source);
        assert_eq!(loaded.data.storage.root, expected.data.storage.root);
        assert_eq!(
            loaded.server.grpc.shutdown_grace,
            Duration::from_secs(2),
            "the override wins, key by key"
        );

        let conf = write_binary_config(dir.path(), &data, "");
        let loaded = Config::load(&conf, []).expect("an empty override loads");
        assert_eq!(
            loaded.server.grpc.shutdown_grace,
            expected.server.grpc.shutdown_grace
        );
    }

    #[test]
    fn the_address_is_read_from_the_listening_line() {
        let line = "2026-01-01T00:00:00Z  INFO streamhub_server::run: listening on 127.0.0.1:4567";
        assert_eq!(
            listening_addr(line),
            Some(SocketAddr::from(([127, 0, 0, 1], 4567)))
        );
        assert_eq!(listening_addr("file store opened"), None);
    }
}
