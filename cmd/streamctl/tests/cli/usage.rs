//! Exit codes: 2 for usage errors, 1 for the server's errors and unreachable servers.

use streamhub_testkit::spawn_app;

use crate::streamctl::run;

#[tokio::test]
async fn usage_errors_exit_2() {
    let app = spawn_app().await;
    let url = app.url();
    run(&url, &[], "").await.failed_with(2, "Usage");
    run(&url, &["frobnicate"], "")
        .await
        .failed_with(2, "frobnicate");
    run(&url, &["stocks"], "").await.failed_with(2, "SYMBOLS");
    run(&url, &["logs", "--tail", "0"], "")
        .await
        .failed_with(2, "--tail");
    run(&url, &["--timeout", "soon", "health"], "")
        .await
        .failed_with(2, "--timeout");
    run(&url, &["--tls-ca", "missing-ca.pem", "health"], "")
        .await
        .failed_with(2, "--tls-ca missing-ca.pem");
    run("https://localhost:1", &["health"], "")
        .await
        .failed_with(2, "needs --tls-ca");
    run("not a uri", &["health"], "")
        .await
        .failed_with(2, "--addr");
    run(&url, &["--token", "bad\ntoken", "health"], "")
        .await
        .failed_with(2, "--token");
}

#[tokio::test]
async fn an_unreachable_server_exits_1_naming_the_address() {
    // Port 1 on loopback: nothing listens there.
    run("http://127.0.0.1:1", &["health"], "")
        .await
        .failed_with(1, "cannot connect to http://127.0.0.1:1");
}

#[tokio::test]
async fn the_timeout_is_the_call_s_deadline() {
    let app = spawn_app().await;
    // A follow never ends by itself; the deadline ends it on the server's side.
    run(&app.url(), &["--timeout", "300ms", "logs", "--follow"], "")
        .await
        .failed_with(1, "DEADLINE_EXCEEDED");
}

#[tokio::test]
async fn help_exits_0() {
    let finished = run("http://127.0.0.1:1", &["--help"], "").await;
    let lines = finished.success();
    assert!(
        lines.iter().any(|line| line.contains("upload")),
        "{lines:?}"
    );
}
