//! The real executable: config file plus environment override, SIGTERM, a bad config.

use std::{path::Path, process::Command};

use streamhub_testkit::{BinaryServer, next, within, write_binary_config};
use tonic::{Code, transport::Endpoint};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

pub(crate) const BINARY: &str = env!("CARGO_BIN_EXE_streamhub");

/// Writes `yaml` as the whole config file (for tests of the config itself).
pub(crate) fn write_config(dir: &Path, yaml: &str) -> std::path::PathBuf {
    let path = dir.join("config.yaml");
    std::fs::write(&path, yaml).expect("write the config file");
    path
}

/// Writes the kit's test config (an ephemeral loopback port, the data under `data_dir`) with
/// 2 s for open calls to end at shutdown.
pub(crate) fn local_config(dir: &Path, data_dir: &Path) -> std::path::PathBuf {
    write_binary_config(dir, data_dir, "server:\n  grpc:\n    shutdown_grace: 2s\n")
}

/// Starts the binary on `config` and returns it once it listens.
pub(crate) fn start_binary(config: &Path) -> BinaryServer {
    BinaryServer::start(BINARY, config, &[])
}

#[tokio::test]
async fn the_binary_takes_env_over_file_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    // 192.0.2.1 (TEST-NET-1) is never local: start-up only succeeds if the env override wins.
    let config = write_config(
        dir.path(),
        &format!(
            "server:\n  grpc:\n    addr: 192.0.2.1:9000\n    shutdown_grace: 5s\n\
             data:\n  database:\n    source: sqlite://{db}\n  storage:\n    root: {files}\n",
            db = data.join("streamhub.db").display(),
            files = data.join("files").display(),
        ),
    );
    let server = BinaryServer::start(
        BINARY,
        &config,
        &[("STREAMHUB__SERVER__GRPC__ADDR", "127.0.0.1:0")],
    );
    let addr = server.addr;
    assert!(
        addr.ip().is_loopback() && addr.port() != 0,
        "listening on {addr}"
    );
    assert!(data.join("streamhub.db").is_file(), "database created");
    assert!(data.join("files").is_dir(), "file store created");

    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    let mut health = HealthClient::new(channel);
    let status = health
        .check(HealthCheckRequest::default())
        .await
        .expect("Check")
        .into_inner()
        .status();
    assert_eq!(status, ServingStatus::Serving);
    let mut updates = health
        .watch(HealthCheckRequest::default())
        .await
        .expect("Watch")
        .into_inner();
    next("SERVING", &mut updates).await;

    server.terminate();

    let flipped = next("NOT_SERVING", &mut updates).await;
    assert_eq!(flipped.status(), ServingStatus::NotServing);
    let err = within("the Watch to end", updates.message())
        .await
        .expect_err("ends with a status");
    assert_eq!(err.code(), Code::Unavailable);

    let status = server.exit().await;
    assert!(status.success(), "exit status {status}");
}

/// A SIGTERM as soon as the log says `listening on` starts the graceful shutdown (exit 0)
/// instead of killing the process: the signal handlers are installed before the server binds.
/// Several rounds, because the window this guards against was a narrow race.
#[test]
fn sigterm_right_after_listening_is_a_graceful_stop() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = local_config(dir.path(), dir.path());
    for round in 0..8 {
        let mut server = start_binary(&config);
        server.terminate();
        let status = server.wait_for_exit();
        assert!(
            status.success(),
            "round {round}: exit status {status} (a signal-killed server has none)"
        );
    }
}

#[test]
fn a_bad_config_stops_start_up_with_one_line_naming_the_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cases = [
        (
            "server:\n  grpc:\n    addr: not-an-address\n",
            "server.grpc.addr",
        ),
        ("server:\n  grpc:\n    adr: 127.0.0.1:0\n", "adr"),
        (
            "server:\n  grpc:\n    shutdown_grace: soon\n",
            "server.grpc.shutdown_grace",
        ),
        ("server: [\n", "config.yaml"),
        ("log:\n  format: xml\n", "log.format"),
    ];
    for (yaml, named) in cases {
        let config = write_config(dir.path(), yaml);
        let output = Command::new(BINARY)
            .arg("-conf")
            .arg(&config)
            .output()
            .expect("run the binary");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{yaml:?}: stderr {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{yaml:?}: {stderr}");
        assert!(
            stderr.contains(named),
            "{yaml:?}: {stderr} should name {named}"
        );
    }

    let output = Command::new(BINARY)
        .arg("-conf")
        .arg(dir.path().join("missing.yaml"))
        .output()
        .expect("run the binary");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("missing.yaml"), "{stderr}");
}

/// Runs the binary with `args` off the test's runtime (an in-process server may be serving on
/// it) and returns its exit code and output.
async fn run_binary(args: &[&str]) -> (Option<i32>, String, String) {
    let args: Vec<String> = args.iter().map(|arg| (*arg).to_owned()).collect();
    let output = within(
        "the binary to exit",
        tokio::task::spawn_blocking(move || Command::new(BINARY).args(&args).output()),
    )
    .await
    .expect("wait task")
    .expect("run the binary");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn probe_exits_0_for_a_serving_server_and_1_when_nothing_answers() {
    let app = streamhub_testkit::spawn_app().await;
    let addr = app.addr.to_string();
    let (code, stdout, stderr) = run_binary(&["-probe", &addr]).await;
    assert_eq!(code, Some(0), "stdout {stdout} stderr {stderr}");
    assert!(stdout.contains("SERVING"), "{stdout}");
    app.stop().await;

    // The stopped server's port is closed now.
    let (code, _, stderr) = run_binary(&["-probe", &addr]).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("cannot connect"), "{stderr}");

    let (code, _, stderr) = run_binary(&["-probe", "not an address"]).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("not an address"), "{stderr}");
}

#[tokio::test]
async fn check_config_validates_without_starting_the_server() {
    let dir = tempfile::tempdir().expect("temp dir");
    // A port in use would stop a real start; -check-config binds nothing, so it passes.
    let good = write_config(dir.path(), "server:\n  grpc:\n    addr: 127.0.0.1:1\n");
    let good = good.to_str().expect("UTF-8 path");
    let (code, stdout, stderr) = run_binary(&["-conf", good, "-check-config"]).await;
    assert_eq!(code, Some(0), "stdout {stdout} stderr {stderr}");
    assert!(stdout.starts_with("config ok"), "{stdout}");

    let bad = write_config(dir.path(), "server:\n  grpc:\n    shutdown_grace: soon\n");
    let bad = bad.to_str().expect("UTF-8 path");
    let (code, _, stderr) = run_binary(&["-check-config", "-conf", bad]).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("server.grpc.shutdown_grace"), "{stderr}");
}
