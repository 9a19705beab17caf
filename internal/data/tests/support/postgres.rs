//! A PostgreSQL owned by the test binary: started on first use, one fresh database per test,
//! stopped and its directory removed when the binary ends. Never the server that may already
//! run on this machine.
//!
//! The server runs under a small `sh` supervisor whose stdin is a pipe from this process.
//! Rust runs no destructors for statics at exit, but the kernel closes that pipe however the
//! binary ends (returns, panics, is killed): the supervisor then reads end-of-file, stops the
//! server and removes the directory.
//!
//! When the tests run as root, `initdb` and `postgres` (which refuse to run as root) run as
//! the `postgres` user through `setpriv`, in a directory that user owns.

use std::{
    io::{BufRead as _, BufReader},
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, ChildStdin, Command, Stdio},
    sync::{
        Mutex, OnceLock,
        atomic::{AtomicU32, Ordering},
        mpsc,
    },
    time::{Duration, Instant},
};

use sqlx::{Connection as _, PgConnection};

/// How long the server may take to start.
const START_DEADLINE: Duration = Duration::from_secs(60);

/// The running server. Never dropped: see the module comment for how it stops.
#[derive(Debug)]
struct Server {
    port: u16,
    /// Holding it keeps the supervisor's stdin open; the kernel closes it at exit.
    _supervisor_stdin: Mutex<ChildStdin>,
    _supervisor: Mutex<Child>,
}

static SERVER: OnceLock<Result<Server, String>> = OnceLock::new();
static DATABASES: AtomicU32 = AtomicU32::new(0);

/// The URL of a new, empty database on the test binary's server, which starts on first call.
/// Panics (failing the test) with the reason when the server cannot start.
pub(crate) async fn fresh_database() -> String {
    // Started on a thread of its own: the start blocks (processes, pipes) and must not hold
    // the test's runtime, and every test that races here waits for the one start.
    let server = tokio::task::spawn_blocking(|| SERVER.get_or_init(start).as_ref())
        .await
        .expect("the start does not panic");
    let server = match server {
        Ok(server) => server,
        Err(reason) => panic!("the test PostgreSQL did not start: {reason}"),
    };
    let name = format!(
        "t_{}_{}",
        std::process::id(),
        DATABASES.fetch_add(1, Ordering::Relaxed)
    );
    let admin = url(server.port, "postgres");
    let mut connection = PgConnection::connect(&admin)
        .await
        .unwrap_or_else(|err| panic!("connect to {admin}: {err}"));
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut connection)
        .await
        .unwrap_or_else(|err| panic!("CREATE DATABASE {name}: {err}"));
    connection
        .close()
        .await
        .expect("close the admin connection");
    url(server.port, &name)
}

fn url(port: u16, database: &str) -> String {
    format!("postgres://postgres@127.0.0.1:{port}/{database}")
}

fn start() -> Result<Server, String> {
    let began = Instant::now();
    let bin = bindir()?;
    let dir = tempfile::Builder::new()
        .prefix("streamhub-pg-")
        .tempdir()
        .map_err(|err| format!("a temporary directory: {err}"))?
        // The supervisor removes it, also when this process is killed.
        .keep();
    let as_root = is_root()?;
    if as_root {
        run(Command::new("chown").arg("postgres:").arg(&dir))?;
    }
    let data = dir.join("data");
    let sockets = dir.join("sockets");
    std::fs::create_dir(&sockets).map_err(|err| format!("{}: {err}", sockets.display()))?;
    if as_root {
        run(Command::new("chown").arg("postgres:").arg(&sockets))?;
    }
    let mut initdb = as_server_user(as_root, &bin.join("initdb"));
    initdb
        .args(["--auth=trust", "--username=postgres", "--encoding=UTF8"])
        .args(["--no-locale", "--no-sync", "--pgdata"])
        .arg(&data);

    let port = free_port()?;
    let mut postgres = as_server_user(as_root, &bin.join("postgres"));
    postgres
        .arg("-D")
        .arg(&data)
        .args(["-p", &port.to_string(), "-h", "127.0.0.1", "-k"])
        .arg(&sockets)
        // A throwaway server: durability buys nothing here.
        .args(["-c", "fsync=off", "-c", "synchronous_commit=off"])
        .args(["-c", "full_page_writes=off", "-c", "max_connections=200"]);
    let server_command = shell_words(&postgres);
    // The server gets /dev/null; the supervisor's stdin stays the pipe for `read`.
    // initdb runs under the supervisor too, so the directory goes also when this process
    // ends during initdb: `read` then sees end-of-file at once. SIGTERM, not SIGINT: a
    // background job of a non-interactive shell starts with SIGINT ignored, so a SIGINT sent
    // before postgres installs its handler is lost and `wait` never returns. SIGTERM then
    // either ends it outright or asks for a smart shutdown, which completes because its
    // clients (this process) are gone.
    // SIGPIPE ignored (and so for initdb and postgres too): once this process is gone
    // nobody reads their output, and a write must not kill the supervisor before its `rm`.
    let script = format!(
        "trap '' PIPE\n\
         if {initdb_command} >&2; then\n\
           {server_command} </dev/null & server=$!\n\
           read _ignored\n\
           kill -TERM $server 2>/dev/null\n\
           wait $server\n\
         else\n\
           echo 'initdb failed' >&2\n\
         fi\n\
         rm -rf '{}'\n",
        dir.display(),
        initdb_command = shell_words(&initdb),
    );
    let mut supervisor = Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|err| format!("start sh: {err}"))?;
    let stdin = supervisor.stdin.take().ok_or("no stdin pipe")?;
    let stderr = supervisor.stderr.take().ok_or("no stderr pipe")?;

    // The server says when it accepts connections; the lines are drained for good after, so
    // its log never blocks it.
    let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut ready = Some(ready_tx);
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if let Some(tx) = ready.as_ref() {
                if line.contains("database system is ready to accept connections") {
                    let _ = tx.send(Ok(()));
                    ready = None;
                } else {
                    seen.push(line);
                }
            } else if std::env::var_os("TEST_LOG").is_some() {
                eprintln!("postgres: {line}");
            }
        }
        if let Some(tx) = ready {
            let _ = tx.send(Err(format!(
                "initdb or postgres exited:\n{}",
                seen.join("\n")
            )));
        }
    });
    match ready_rx.recv_timeout(START_DEADLINE) {
        Ok(Ok(())) => {}
        Ok(Err(reason)) => return Err(reason),
        Err(_) => return Err(format!("not ready within {START_DEADLINE:?}")),
    }
    eprintln!(
        "test PostgreSQL on 127.0.0.1:{port} in {} ready after {:?}",
        dir.display(),
        began.elapsed()
    );
    Ok(Server {
        port,
        _supervisor_stdin: Mutex::new(stdin),
        _supervisor: Mutex::new(supervisor),
    })
}

/// The directory of `initdb` and `postgres`: `pg_config --bindir`, Debian's
/// `/usr/lib/postgresql/<version>/bin` (newest first), or wherever `initdb` is on the PATH.
fn bindir() -> Result<PathBuf, String> {
    let has_both = |dir: &Path| dir.join("initdb").is_file() && dir.join("postgres").is_file();
    if let Ok(output) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        if output.status.success() && has_both(&dir) {
            return Ok(dir);
        }
    }
    let mut debian: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, dir)| has_both(dir))
        .collect();
    debian.sort();
    if let Some((_, dir)) = debian.pop() {
        return Ok(dir);
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .find(|dir| has_both(dir))
        .ok_or_else(|| {
            "no initdb and postgres found (pg_config --bindir, /usr/lib/postgresql/*/bin, PATH); \
             `make test` installs Debian's postgresql package"
                .to_owned()
        })
}

fn is_root() -> Result<bool, String> {
    let output = Command::new("id")
        .arg("-u")
        .output()
        .map_err(|err| format!("id -u: {err}"))?;
    Ok(String::from_utf8_lossy(&output.stdout).trim() == "0")
}

/// `program` as a command, run as the `postgres` user when the tests run as root.
fn as_server_user(as_root: bool, program: &Path) -> Command {
    if as_root {
        let mut command = Command::new("setpriv");
        command
            .args([
                "--reuid=postgres",
                "--regid=postgres",
                "--init-groups",
                "--",
            ])
            .arg(program);
        command
    } else {
        Command::new(program)
    }
}

/// `command` as one line of `sh`, every word single-quoted.
fn shell_words(command: &Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|word| format!("'{}'", word.to_string_lossy().replace('\'', r"'\''")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs `command` to the end; its output is the error when it fails.
fn run(command: &mut Command) -> Result<(), String> {
    let output = command
        .output()
        .map_err(|err| format!("{}: {err}", shell_words(command)))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{} failed ({}):\n{}{}",
            shell_words(command),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// A loopback port nothing listens on right now.
fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|err| format!("a free port: {err}"))
}
