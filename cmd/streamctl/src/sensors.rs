//! `streamctl sensors`: CollectSensorData from standard input (CSV or JSON lines) or from a
//! simulation, then the server's statistics.
//!
//! Input lines: `sensor_id,temperature,humidity,pressure[,timestamp]` (a header line starting
//! with `sensor_id` is skipped) or a JSON object with the same fields. A timestamp is RFC 3339
//! or unix seconds; without one the server counts the reading as taken when it arrived.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use streamhub_api::streaming::{SensorData, SensorSummary, Stats};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::{
    Failure, Outcome,
    connect::Connection,
    input::{send_while, stdin_lines},
    output::{Output, json_time},
};

/// Readings queued towards the server.
const SEND_QUEUE: usize = 256;

#[derive(clap::Args)]
pub(crate) struct SensorsArgs {
    /// Send N simulated readings instead of reading standard input.
    #[arg(long, value_name = "N")]
    simulate: Option<u64>,
    /// How many sensors the simulated readings come from.
    #[arg(long, value_name = "N", default_value_t = 3, requires = "simulate",
          value_parser = clap::value_parser!(u32).range(1..))]
    sensors: u32,
}

pub(crate) async fn run(connection: &Connection, output: &Output, args: SensorsArgs) -> Outcome {
    let mut client = connection.streaming().await?;
    let (readings, requests) = mpsc::channel(SEND_QUEUE);
    let call = client.collect_sensor_data(ReceiverStream::new(requests));
    let (summary, ()) = match args.simulate {
        Some(count) => send_while(call, simulate(readings, count, args.sensors)).await?,
        None => send_while(call, from_stdin(readings)).await?,
    };
    output.record(|| human(&summary), || to_json(&summary))
}

/// Sends every line of standard input; an unusable line cancels the call (exit 2).
async fn from_stdin(readings: mpsc::Sender<SensorData>) -> Result<(), Failure> {
    let mut lines = stdin_lines();
    let mut number = 0_usize;
    while let Some(line) = lines.recv().await {
        number += 1;
        let line = line.map_err(|err| Failure::Usage(format!("reading standard input: {err}")))?;
        let line = line.trim();
        if line.is_empty() || line.starts_with("sensor_id") {
            continue;
        }
        let reading = parse_reading(line)
            .map_err(|reason| Failure::Usage(format!("line {number}: {reason}")))?;
        if readings.send(reading).await.is_err() {
            break; // The call has ended; its answer says why.
        }
    }
    Ok(())
}

/// Plausible readings from `sensors` sensors, one second apart, ending now.
async fn simulate(
    readings: mpsc::Sender<SensorData>,
    count: u64,
    sensors: u32,
) -> Result<(), Failure> {
    let mut rng = fastrand::Rng::new();
    let start = SystemTime::now() - Duration::from_secs(count);
    for index in 0..count {
        let sensor = index % u64::from(sensors);
        let reading = SensorData {
            sensor_id: format!("sim-{sensor}"),
            temperature: 15.0 + 10.0 * rng.f64() + sensor as f64,
            humidity: 30.0 + 40.0 * rng.f64(),
            pressure: 990.0 + 40.0 * rng.f64(),
            timestamp: Some((start + Duration::from_secs(index)).into()),
        };
        if readings.send(reading).await.is_err() {
            break;
        }
    }
    Ok(())
}

fn parse_reading(line: &str) -> Result<SensorData, String> {
    if line.starts_with('{') {
        return parse_json(line);
    }
    let fields: Vec<&str> = line.split(',').map(str::trim).collect();
    if !(4..=5).contains(&fields.len()) {
        return Err(format!(
            "expected sensor_id,temperature,humidity,pressure[,timestamp], got {} fields",
            fields.len()
        ));
    }
    let number = |name: &str, text: &str| {
        text.parse::<f64>()
            .map_err(|_| format!("{name} {text:?} is not a number"))
    };
    Ok(SensorData {
        sensor_id: fields[0].to_owned(),
        temperature: number("temperature", fields[1])?,
        humidity: number("humidity", fields[2])?,
        pressure: number("pressure", fields[3])?,
        timestamp: match fields.get(4) {
            None | Some(&"") => None,
            Some(text) => Some(parse_time(&Value::String((*text).to_owned()))?),
        },
    })
}

fn parse_json(line: &str) -> Result<SensorData, String> {
    let value: Value =
        serde_json::from_str(line).map_err(|err| format!("not a JSON object: {err}"))?;
    let number = |name: &str| {
        value
            .get(name)
            .and_then(Value::as_f64)
            .ok_or_else(|| format!("{name} must be a number"))
    };
    Ok(SensorData {
        sensor_id: value
            .get("sensor_id")
            .and_then(Value::as_str)
            .ok_or("sensor_id must be a string")?
            .to_owned(),
        temperature: number("temperature")?,
        humidity: number("humidity")?,
        pressure: number("pressure")?,
        timestamp: match value.get("timestamp") {
            None | Some(Value::Null) => None,
            Some(time) => Some(parse_time(time)?),
        },
    })
}

/// RFC 3339 text, or unix seconds (as a number or as text).
fn parse_time(value: &Value) -> Result<prost_types::Timestamp, String> {
    let seconds = match value {
        Value::Number(number) => number.as_f64(),
        Value::String(text) => match text.parse::<f64>() {
            Ok(seconds) => Some(seconds),
            Err(_) => {
                let at = humantime::parse_rfc3339_weak(text)
                    .map_err(|err| format!("timestamp {text:?} is not RFC 3339: {err}"))?;
                return Ok(at.into());
            }
        },
        _ => None,
    };
    let seconds = seconds
        .filter(|seconds| seconds.is_finite() && *seconds >= 0.0)
        .ok_or_else(|| format!("timestamp {value} is not a unix time"))?;
    UNIX_EPOCH
        .checked_add(Duration::from_secs_f64(seconds))
        .map(Into::into)
        .ok_or_else(|| format!("timestamp {value} is out of range"))
}

fn human(summary: &SensorSummary) -> String {
    let mut text = format!(
        "{} accepted, {} rejected",
        readings(i64::from(summary.total_readings)),
        summary.rejected_readings
    );
    if let (Some(start), Some(end)) = (&summary.start_time, &summary.end_time) {
        text.push_str(&format!(
            ", from {} to {}",
            crate::output::human_time(Some(start)),
            crate::output::human_time(Some(end))
        ));
    }
    text.push_str(&format!(
        "\n{:<14} {:>8} {:>10} {:>10} {:>10} {:>10}",
        "", "count", "min", "max", "mean", "stddev"
    ));
    for (name, stats) in [
        ("temperature", &summary.temperature),
        ("humidity", &summary.humidity),
        ("pressure", &summary.pressure),
    ] {
        text.push('\n');
        text.push_str(&stats_row(name, stats.as_ref()));
    }
    for sensor in &summary.sensors {
        text.push_str(&format!(
            "\nsensor {} ({})",
            sensor.sensor_id,
            readings(sensor.count)
        ));
        for (name, stats) in [
            ("temperature", &sensor.temperature),
            ("humidity", &sensor.humidity),
            ("pressure", &sensor.pressure),
        ] {
            text.push_str("\n  ");
            text.push_str(&stats_row(name, stats.as_ref()));
        }
    }
    text
}

fn readings(count: i64) -> String {
    if count == 1 {
        "1 reading".to_owned()
    } else {
        format!("{count} readings")
    }
}

fn stats_row(name: &str, stats: Option<&Stats>) -> String {
    let stats = stats.cloned().unwrap_or_default();
    format!(
        "{name:<14} {:>8} {:>10.2} {:>10.2} {:>10.2} {:>10.2}",
        stats.count, stats.min, stats.max, stats.mean, stats.stddev
    )
}

fn stats_json(stats: Option<&Stats>) -> Value {
    let stats = stats.cloned().unwrap_or_default();
    json!({
        "count": stats.count,
        "min": stats.min,
        "max": stats.max,
        "mean": stats.mean,
        "stddev": stats.stddev,
    })
}

fn to_json(summary: &SensorSummary) -> Value {
    json!({
        "total_readings": summary.total_readings,
        "rejected_readings": summary.rejected_readings,
        "avg_temperature": summary.avg_temperature,
        "avg_humidity": summary.avg_humidity,
        "avg_pressure": summary.avg_pressure,
        "start_time": json_time(summary.start_time.as_ref()),
        "end_time": json_time(summary.end_time.as_ref()),
        "temperature": stats_json(summary.temperature.as_ref()),
        "humidity": stats_json(summary.humidity.as_ref()),
        "pressure": stats_json(summary.pressure.as_ref()),
        "sensors": summary.sensors.iter().map(|sensor| json!({
            "sensor_id": sensor.sensor_id,
            "count": sensor.count,
            "temperature": stats_json(sensor.temperature.as_ref()),
            "humidity": stats_json(sensor.humidity.as_ref()),
            "pressure": stats_json(sensor.pressure.as_ref()),
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_csv_and_json_lines() {
        let csv = parse_reading("s1, 21.5, 40, 1013, 1767366245").expect("csv");
        assert_eq!(csv.sensor_id, "s1");
        assert_eq!(
            (csv.temperature, csv.humidity, csv.pressure),
            (21.5, 40.0, 1013.0)
        );
        assert_eq!(csv.timestamp.map(|t| t.seconds), Some(1_767_366_245));
        let json = parse_reading(
            r#"{"sensor_id":"s2","temperature":-3,"humidity":1,"pressure":2,"timestamp":"2026-01-02T15:04:05Z"}"#,
        )
        .expect("json");
        assert_eq!(json.sensor_id, "s2");
        assert_eq!(json.timestamp.map(|t| t.seconds), Some(1_767_366_245));
        assert!(
            parse_reading("s3,1,2,3")
                .expect("no time")
                .timestamp
                .is_none()
        );
    }

    #[test]
    fn a_bad_line_names_the_problem() {
        for (line, expected) in [
            ("s1,1,2", "got 3 fields"),
            ("s1,warm,2,3", "temperature \"warm\" is not a number"),
            (
                r#"{"sensor_id":"s1","temperature":1,"humidity":2}"#,
                "pressure must be a number",
            ),
            ("s1,1,2,3,noon", "is not RFC 3339"),
        ] {
            let err = parse_reading(line).expect_err(line);
            assert!(err.contains(expected), "{line}: {err}");
        }
    }
}
