//! Running the real `streamctl` executable: to completion with a given input ([`run`]), or
//! as an interactive [`Session`] whose standard input the test types into line by line.

use std::{
    io::{BufRead as _, BufReader, Write as _},
    process::{Child, ChildStdin, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;
use streamhub_testkit::bounded;
use tokio::sync::mpsc;

const BINARY: &str = env!("CARGO_BIN_EXE_streamctl");

/// How long a test waits for streamctl: longer than the kit's [`streamhub_testkit::WAIT`],
/// since it is a process of its own that starts, connects and reconnects with backoff.
pub(crate) const WAIT: Duration = Duration::from_secs(15);

/// A finished run.
#[derive(Debug)]
pub(crate) struct Finished {
    pub(crate) status: ExitStatus,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Finished {
    pub(crate) fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Asserts exit code 0 and returns stdout's lines.
    pub(crate) fn success(&self) -> Vec<&str> {
        assert_eq!(
            self.code(),
            Some(0),
            "expected success\nstdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self.stdout.lines().collect()
    }

    /// Asserts exit code 0 and parses every stdout line as one JSON object.
    pub(crate) fn json(&self) -> Vec<Value> {
        self.success()
            .into_iter()
            .map(|line| {
                let value: Value = serde_json::from_str(line)
                    .unwrap_or_else(|err| panic!("not a JSON line ({err}): {line}"));
                assert!(value.is_object(), "not a JSON object: {line}");
                value
            })
            .collect()
    }

    /// Asserts exit code `code` and that stderr mentions `message`.
    pub(crate) fn failed_with(&self, code: i32, message: &str) {
        assert_eq!(
            self.code(),
            Some(code),
            "expected exit code {code}\nstdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        assert!(
            self.stderr.contains(message),
            "expected stderr to mention {message:?}, got:\n{}",
            self.stderr
        );
    }
}

fn command(addr: &str, args: &[&str]) -> Command {
    let mut command = Command::new(BINARY);
    command
        .arg("--addr")
        .arg(addr)
        .args(args)
        .env_remove("STREAMCTL_ADDR")
        .env_remove("STREAMCTL_TOKEN")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Runs `streamctl --addr ADDR ARGS...` with `input` on its standard input, to the end.
pub(crate) async fn run(addr: &str, args: &[&str], input: &str) -> Finished {
    let mut child = command(addr, args).spawn().expect("start streamctl");
    let mut stdin = child.stdin.take().expect("piped stdin");
    let input = input.to_owned();
    // A command may stop reading early (an error); a failed write is not the test's failure.
    std::thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
    });
    let stdout = read_all(child.stdout.take().expect("piped stdout"));
    let stderr = read_all(child.stderr.take().expect("piped stderr"));
    let status = tokio::task::spawn_blocking(move || wait_for_exit(child))
        .await
        .expect("waiting for streamctl");
    Finished {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}

fn read_all(mut pipe: impl std::io::Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Polls the child until it exits; kills it and fails after [`WAIT`].
fn wait_for_exit(mut child: Child) -> ExitStatus {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(status) = child.try_wait().expect("poll streamctl") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("streamctl did not exit within {WAIT:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A running streamctl whose input the test types and whose output it reads line by line.
pub(crate) struct Session {
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    stdout: mpsc::Receiver<String>,
    stderr: mpsc::Receiver<String>,
    /// Every stderr line read so far, for failure messages.
    stderr_seen: Vec<String>,
}

/// Lines buffered per stream; a full buffer makes the reader thread (and streamctl) wait.
const LINE_BUFFER: usize = 1024;

fn forward_lines(pipe: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (lines, receiver) = mpsc::channel(LINE_BUFFER);
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            if lines.blocking_send(line).is_err() {
                return;
            }
        }
    });
    receiver
}

impl Session {
    pub(crate) fn start(addr: &str, args: &[&str]) -> Self {
        let mut child = command(addr, args).spawn().expect("start streamctl");
        Self {
            stdin: child.stdin.take(),
            stdout: forward_lines(child.stdout.take().expect("piped stdout")),
            stderr: forward_lines(child.stderr.take().expect("piped stderr")),
            child: Some(child),
            stderr_seen: Vec::new(),
        }
    }

    /// Types `line` and Enter.
    pub(crate) fn type_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin still open");
        writeln!(stdin, "{line}")
            .and_then(|()| stdin.flush())
            .expect("type into streamctl");
    }

    /// Ends the input, as Ctrl-D would.
    pub(crate) fn close_input(&mut self) {
        self.stdin = None;
    }

    /// The next line on stdout.
    pub(crate) async fn line(&mut self, what: &str) -> String {
        let line = bounded(WAIT, what, self.stdout.recv()).await;
        line.unwrap_or_else(|| {
            panic!(
                "stdout ended while waiting for {what}; stderr:\n{}",
                self.stderr_seen.join("\n")
            )
        })
    }

    /// The next stdout line, parsed as a JSON object.
    pub(crate) async fn json(&mut self, what: &str) -> Value {
        let line = self.line(what).await;
        serde_json::from_str(&line).unwrap_or_else(|err| panic!("not a JSON line ({err}): {line}"))
    }

    /// Reads JSON lines until one satisfies `wanted`; returns it.
    pub(crate) async fn json_until(
        &mut self,
        what: &str,
        wanted: impl Fn(&Value) -> bool,
    ) -> Value {
        loop {
            let value = self.json(what).await;
            if wanted(&value) {
                return value;
            }
        }
    }

    /// Reads stdout lines until one contains `text`; returns it.
    pub(crate) async fn line_containing(&mut self, text: &str) -> String {
        loop {
            let line = self.line(text).await;
            if line.contains(text) {
                return line;
            }
        }
    }

    /// Reads stderr lines until one contains `text`; returns it.
    pub(crate) async fn stderr_containing(&mut self, text: &str) -> String {
        loop {
            let line = bounded(WAIT, text, self.stderr.recv())
                .await
                .unwrap_or_else(|| panic!("stderr ended while waiting for {text:?}"));
            self.stderr_seen.push(line.clone());
            if line.contains(text) {
                return line;
            }
        }
    }

    /// Waits for the exit; returns the status, the stdout lines not read yet and all of stderr.
    pub(crate) async fn finish(mut self) -> Finished {
        self.stdin = None;
        let child = self.child.take().expect("finished once");
        let status = tokio::task::spawn_blocking(move || wait_for_exit(child))
            .await
            .expect("waiting for streamctl");
        let mut stdout = String::new();
        while let Some(line) = self.stdout.recv().await {
            stdout.push_str(&line);
            stdout.push('\n');
        }
        while let Some(line) = self.stderr.recv().await {
            self.stderr_seen.push(line);
        }
        Finished {
            status,
            stdout,
            stderr: self.stderr_seen.join("\n"),
        }
    }

    /// Kills the process, as a lost connection or Ctrl-C would end it.
    pub(crate) fn kill(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // A failing test must not leave streamctl running.
        self.kill();
    }
}
