//! `streamctl sensors`.

use streamhub_testkit::spawn_app;

use crate::streamctl::run;

#[tokio::test]
async fn csv_and_json_lines_are_summarised_with_rejections_counted() {
    let app = spawn_app().await;
    let input = "\
sensor_id,temperature,humidity,pressure,timestamp
s1,20,40,1000,1767366245
s2,22,50,1010,2026-01-02T15:04:10Z
{\"sensor_id\":\"s1\",\"temperature\":24,\"humidity\":60,\"pressure\":1020}
s3,500,50,1000
";
    let summary = run(&app.url(), &["--json", "sensors"], input).await.json();
    assert_eq!(summary.len(), 1, "{summary:?}");
    let summary = &summary[0];
    assert_eq!(summary["total_readings"], 3, "{summary}");
    assert_eq!(
        summary["rejected_readings"], 1,
        "500 °C is implausible: {summary}"
    );
    assert_eq!(summary["temperature"]["mean"], 22.0, "{summary}");
    assert_eq!(summary["temperature"]["min"], 20.0);
    assert_eq!(summary["start_time"], "2026-01-02T15:04:05.000000000Z");
    let sensors: Vec<&str> = summary["sensors"]
        .as_array()
        .expect("sensors")
        .iter()
        .map(|sensor| sensor["sensor_id"].as_str().expect("id"))
        .collect();
    assert_eq!(sensors, ["s1", "s2"]);

    let human = run(&app.url(), &["sensors"], "s1,20,40,1000\n").await;
    let lines = human.success();
    assert!(
        lines[0].starts_with("1 reading accepted, 0 rejected"),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|line| line.starts_with("temperature")),
        "{lines:?}"
    );
}

#[tokio::test]
async fn simulate_sends_n_plausible_readings() {
    let app = spawn_app().await;
    let summary = run(
        &app.url(),
        &["--json", "sensors", "--simulate", "30", "--sensors", "3"],
        "",
    )
    .await
    .json();
    assert_eq!(summary[0]["total_readings"], 30, "{summary:?}");
    assert_eq!(summary[0]["rejected_readings"], 0);
    assert_eq!(summary[0]["sensors"].as_array().expect("sensors").len(), 3);
}

#[tokio::test]
async fn an_unreadable_line_is_a_usage_error() {
    let app = spawn_app().await;
    run(&app.url(), &["sensors"], "s1,20,40,1000\ns1,warm,40,1000\n")
        .await
        .failed_with(2, "line 2: temperature \"warm\" is not a number");
}
