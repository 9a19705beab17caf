//! `streamctl push-logs` and `streamctl logs`, including `--follow`.

use std::time::Duration;

use streamhub_testkit::{spawn_app, spawn_app_in, spawn_app_with};

use crate::streamctl::{Session, run};

const INPUT: &str = "\
plain line one
{\"service\":\"api\",\"level\":\"warn\",\"message\":\"slow query\",\"metadata\":{\"ms\":120}}

{\"service\":\"api\",\"level\":\"error\",\"message\":\"boom\",\"timestamp\":\"2026-01-02T15:04:05Z\"}
{\"service\":\"db\",\"message\":\"vacuum\"}
";

#[tokio::test]
async fn pushed_lines_come_back_filtered_tailed_and_formatted() {
    // INPUT carries a fixed timestamp from long ago; under the default 7-day retention the
    // retention task's first run (which races with the push) could delete that entry.
    let app = spawn_app_with(|config| {
        config.logs.retention = Duration::from_secs(100 * 365 * 24 * 60 * 60);
    })
    .await;
    let pushed = run(
        &app.url(),
        &["--json", "push-logs", "--service", "cli"],
        INPUT,
    )
    .await
    .json();
    assert_eq!(pushed.len(), 1, "{pushed:?}");
    assert_eq!(pushed[0]["accepted"], 4, "the blank line is skipped");
    assert_eq!(pushed[0]["first_id"], 1);
    assert_eq!(pushed[0]["last_id"], 4);

    let all = run(&app.url(), &["--json", "logs"], "").await.json();
    let ids: Vec<i64> = all
        .iter()
        .map(|entry| entry["id"].as_i64().expect("id"))
        .collect();
    assert_eq!(ids, [1, 2, 3, 4]);
    assert_eq!(all[0]["service"], "cli", "plain lines get --service");
    assert_eq!(all[0]["level"], "INFO");
    assert_eq!(all[0]["message"], "plain line one");
    assert_eq!(all[1]["metadata"]["ms"], "120");
    assert_eq!(all[3]["service"], "db");

    let warnings = run(
        &app.url(),
        &["--json", "logs", "--service", "api", "--level", "WARN"],
        "",
    )
    .await
    .json();
    let messages: Vec<&str> = warnings
        .iter()
        .map(|entry| entry["message"].as_str().expect("message"))
        .collect();
    assert_eq!(messages, ["slow query", "boom"]);

    let tail = run(&app.url(), &["--json", "logs", "--tail", "1"], "")
        .await
        .json();
    assert_eq!(tail.len(), 1);
    assert_eq!(tail[0]["id"], 4);

    let after = run(&app.url(), &["--json", "logs", "--after", "2"], "")
        .await
        .json();
    assert_eq!(after.len(), 2);
    assert_eq!(after[0]["id"], 3);

    let human = run(
        &app.url(),
        &["logs", "--service", "api", "--level", "error"],
        "",
    )
    .await;
    assert_eq!(
        human.success(),
        ["[2026-01-02 15:04:05] #3 ERROR api: boom"]
    );
}

#[tokio::test]
async fn a_bad_input_line_stops_there_and_exits_2() {
    let app = spawn_app().await;
    let finished = run(
        &app.url(),
        &["--json", "push-logs"],
        "first\n{\"message\": 3}\nnever sent\n",
    )
    .await;
    finished.failed_with(2, "line 2: message must be a string");
    let result: serde_json::Value =
        serde_json::from_str(finished.stdout.trim()).expect("the result is still printed");
    assert_eq!(result["accepted"], 1, "{result}");
    let stored = run(&app.url(), &["--json", "logs"], "").await.json();
    assert_eq!(stored.len(), 1, "nothing after the bad line: {stored:?}");
}

#[tokio::test]
async fn a_level_the_server_refuses_exits_1_with_its_message() {
    let app = spawn_app().await;
    run(&app.url(), &["logs", "--level", "LOUD"], "")
        .await
        .failed_with(1, "INVALID_ARGUMENT");
}

#[tokio::test]
async fn follow_prints_new_entries_as_they_are_written() {
    let app = spawn_app().await;
    run(&app.url(), &["push-logs"], "old one\nold two\n")
        .await
        .success();
    let mut follow = Session::start(&app.url(), &["--json", "logs", "--follow", "--tail", "1"]);
    let first = follow.json("the tail").await;
    assert_eq!(
        first["message"], "old two",
        "--tail 1 starts with the last entry"
    );
    run(&app.url(), &["push-logs", "--level", "WARN"], "new one\n")
        .await
        .success();
    let next = follow.json("the new entry").await;
    assert_eq!(next["message"], "new one");
    assert_eq!(next["level"], "WARN");
    assert_eq!(next["id"], 3);
}

#[tokio::test]
async fn follow_resumes_after_a_server_restart() {
    let app = spawn_app().await;
    run(&app.url(), &["push-logs"], "one\ntwo\n")
        .await
        .success();
    let mut follow = Session::start(
        &app.url(),
        &["--json", "logs", "--follow", "--level", "info"],
    );
    assert_eq!(follow.json("entry 1").await["id"], 1);
    assert_eq!(follow.json("entry 2").await["id"], 2);

    let addr = app.addr;
    let data_dir = app.stop().await;
    follow.stderr_containing("resuming after id 2").await;
    let app = spawn_app_in(data_dir, |config| config.server.grpc.addr = addr).await;
    run(
        &app.url(),
        &["push-logs", "--level", "DEBUG"],
        "filtered out\n",
    )
    .await
    .success();
    run(&app.url(), &["push-logs"], "three\n").await.success();
    // The filter survives the reconnect, and nothing before id 3 comes again.
    let next = follow.json("the entry after the restart").await;
    assert_eq!(
        (next["id"].as_i64(), next["message"].as_str()),
        (Some(4), Some("three"))
    );
}
