//! `streamctl health`.

use streamhub_testkit::spawn_app;

use crate::streamctl::{Session, run};

#[tokio::test]
async fn health_reports_serving_for_people_and_scripts() {
    let app = spawn_app().await;
    let human = run(&app.url(), &["health"], "").await;
    assert_eq!(human.success(), ["server: SERVING"]);

    let json = run(
        &app.url(),
        &[
            "health",
            "--json",
            "--service",
            "streaming.StreamingService",
        ],
        "",
    )
    .await
    .json();
    assert_eq!(json.len(), 1, "one record: {json:?}");
    assert_eq!(json[0]["service"], "streaming.StreamingService");
    assert_eq!(json[0]["status"], "SERVING");
}

#[tokio::test]
async fn health_of_an_unknown_service_exits_1() {
    let app = spawn_app().await;
    let finished = run(&app.url(), &["health", "--service", "no.Such"], "").await;
    assert_eq!(finished.code(), Some(1), "{finished:?}");
    assert!(finished.stderr.contains("no.Such"), "{finished:?}");
}

#[tokio::test]
async fn watch_prints_each_change_until_the_server_goes_away() {
    let app = spawn_app().await;
    let mut watch = Session::start(&app.url(), &["--json", "health", "--watch"]);
    assert_eq!(watch.json("the first status").await["status"], "SERVING");
    app.stop().await;
    // Shutdown ends the watch with UNAVAILABLE: an error for a script waiting on it.
    watch.finish().await.failed_with(1, "UNAVAILABLE");
}
