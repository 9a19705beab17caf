//! CollectSensorData: statistics over accepted readings, rejected ones counted, limits.

use streamhub_api::streaming::{SensorData, Stats};
use streamhub_testkit::{spawn_app, spawn_app_with, within};
use tonic::Code;

fn reading(sensor_id: &str, temperature: f64, humidity: f64, pressure: f64, at: i64) -> SensorData {
    SensorData {
        sensor_id: sensor_id.to_owned(),
        temperature,
        humidity,
        pressure,
        timestamp: Some(prost_types::Timestamp {
            seconds: at,
            nanos: 0,
        }),
    }
}

#[tokio::test]
async fn the_summary_covers_accepted_readings_overall_and_per_sensor() {
    let app = spawn_app().await;
    let readings = vec![
        reading("north", 20.0, 40.0, 1000.0, 1_700_000_100),
        reading("south", 30.0, 60.0, 1020.0, 1_700_000_300),
        reading("north", 10.0, 50.0, 980.0, 1_700_000_050),
        // Rejected: no sensor, not a number, implausible values.
        reading("", 20.0, 40.0, 1000.0, 1_700_000_000),
        reading("north", f64::NAN, 40.0, 1000.0, 1_700_000_000),
        reading("north", 500.0, 40.0, 1000.0, 1_700_000_000),
        reading("south", 20.0, 140.0, 1000.0, 1_700_000_999),
        reading("south", 20.0, 40.0, -3.0, 1_700_000_000),
    ];
    let summary = within(
        "the summary",
        app.streaming()
            .collect_sensor_data(tokio_stream::iter(readings)),
    )
    .await
    .expect("summary")
    .into_inner();

    assert_eq!(summary.total_readings, 3);
    assert_eq!(summary.rejected_readings, 5);
    assert_eq!(summary.avg_temperature, 20.0);
    assert_eq!(summary.avg_humidity, 50.0);
    assert_eq!(summary.avg_pressure, 1000.0);
    assert_eq!(
        summary.start_time.expect("start").seconds,
        1_700_000_050,
        "earliest reading"
    );
    assert_eq!(
        summary.end_time.expect("end").seconds,
        1_700_000_300,
        "latest accepted reading"
    );
    let temperature = summary.temperature.expect("temperature stats");
    assert_eq!(
        (temperature.count, temperature.min, temperature.max),
        (3, 10.0, 30.0)
    );
    assert!(
        (temperature.stddev - (200.0f64 / 3.0).sqrt()).abs() < 1e-12,
        "{temperature:?}"
    );
    let ids: Vec<&str> = summary
        .sensors
        .iter()
        .map(|s| s.sensor_id.as_str())
        .collect();
    assert_eq!(ids, ["north", "south"], "sorted by sensor_id");
    let north = &summary.sensors[0];
    assert_eq!(north.count, 2);
    let north_temperature = north.temperature.expect("per-sensor stats");
    assert_eq!(
        (north_temperature.mean, north_temperature.stddev),
        (15.0, 5.0)
    );
    assert_eq!(north.pressure.expect("pressure").min, 980.0);
}

#[tokio::test]
async fn an_empty_stream_gives_zeros_not_nan() {
    let app = spawn_app().await;
    let summary = within(
        "the summary",
        app.streaming()
            .collect_sensor_data(tokio_stream::iter(Vec::<SensorData>::new())),
    )
    .await
    .expect("summary")
    .into_inner();
    assert_eq!(summary.total_readings, 0);
    assert_eq!(summary.rejected_readings, 0);
    assert_eq!(
        (
            summary.avg_temperature,
            summary.avg_humidity,
            summary.avg_pressure
        ),
        (0.0, 0.0, 0.0)
    );
    assert_eq!(summary.temperature, Some(Stats::default()));
    assert!(summary.start_time.is_none() && summary.sensors.is_empty());
}

#[tokio::test]
async fn configured_ranges_and_the_sensor_cap_apply() {
    let app = spawn_app_with(|config| {
        config.sensors.temperature_max = 50.0;
        config.sensors.max_sensors = 2;
    })
    .await;
    let summary = app
        .streaming()
        .collect_sensor_data(tokio_stream::iter(vec![
            reading("a", 49.0, 1.0, 1.0, 1),
            reading("a", 51.0, 1.0, 1.0, 1),
        ]))
        .await
        .expect("summary")
        .into_inner();
    assert_eq!((summary.total_readings, summary.rejected_readings), (1, 1));

    let err = app
        .streaming()
        .collect_sensor_data(tokio_stream::iter(vec![
            reading("a", 1.0, 1.0, 1.0, 1),
            reading("b", 1.0, 1.0, 1.0, 1),
            reading("c", 1.0, 1.0, 1.0, 1),
        ]))
        .await
        .expect_err("a third sensor");
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    assert!(
        err.message().contains("more than 2 distinct sensors"),
        "{err:?}"
    );
}
