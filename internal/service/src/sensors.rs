//! CollectSensorData: feeds each `SensorData` to a biz [`SensorAggregate`] and turns its
//! summary into a `SensorSummary`.

use std::time::SystemTime;

use futures_util::{Stream, StreamExt as _};
use streamhub_api::streaming::{self as pb, SensorData, SensorSummary};
use streamhub_biz::sensors::{self, Reading, ReadingTime, SensorAggregate, SensorLimits};
use tonic::{Request, Response, Status, Streaming};

use crate::{
    Shutdown,
    request_stream::{OnShutdown, request_stream},
    to_status,
};

/// The CollectSensorData handler: the sensor limits plus the shutdown that ends idle streams.
#[derive(Debug, Clone)]
pub(crate) struct SensorHandlers {
    limits: SensorLimits,
    shutdown: Shutdown,
}

impl SensorHandlers {
    pub(crate) fn new(limits: SensorLimits, shutdown: &Shutdown) -> Self {
        Self {
            limits,
            shutdown: shutdown.clone(),
        }
    }

    /// Reads the whole client stream, then answers with the statistics of the accepted
    /// readings; a cancelled stream answers nothing.
    pub(crate) async fn collect_sensor_data(
        &self,
        request: Request<Streaming<SensorData>>,
    ) -> Result<Response<SensorSummary>, Status> {
        let (readings, half_close) = request_stream(
            request.into_inner(),
            OnShutdown::EndWhenIdle(self.shutdown.stopping.clone()),
        );
        half_close
            .confirm_while(aggregate(&self.limits, readings))
            .await
            .map(Response::new)
    }
}

async fn aggregate(
    limits: &SensorLimits,
    readings: impl Stream<Item = Result<SensorData, Status>>,
) -> Result<SensorSummary, Status> {
    let mut aggregate = SensorAggregate::new(limits.clone());
    let mut readings = std::pin::pin!(readings);
    while let Some(data) = readings.next().await.transpose()? {
        let reading = reading(data);
        if let Err(rejection) = aggregate
            .record(&reading, SystemTime::now())
            .map_err(to_status)?
        {
            tracing::debug!(?rejection, sensor_id = %reading.sensor_id, "sensor reading rejected");
        }
    }
    Ok(summary(aggregate.summary()))
}

fn reading(data: SensorData) -> Reading {
    let time = match data.timestamp {
        None => ReadingTime::Unstamped,
        Some(timestamp) => {
            SystemTime::try_from(timestamp).map_or(ReadingTime::Unrepresentable, ReadingTime::At)
        }
    };
    Reading {
        sensor_id: data.sensor_id,
        temperature: data.temperature,
        humidity: data.humidity,
        pressure: data.pressure,
        time,
    }
}

fn summary(summary: sensors::SensorSummary) -> SensorSummary {
    SensorSummary {
        total_readings: i32::try_from(summary.accepted).unwrap_or(i32::MAX),
        avg_temperature: summary.temperature.mean,
        avg_humidity: summary.humidity.mean,
        avg_pressure: summary.pressure.mean,
        start_time: summary.start_time.map(Into::into),
        end_time: summary.end_time.map(Into::into),
        rejected_readings: count(summary.rejected),
        temperature: Some(stats(summary.temperature)),
        humidity: Some(stats(summary.humidity)),
        pressure: Some(stats(summary.pressure)),
        sensors: summary
            .sensors
            .into_iter()
            .map(|sensor| pb::SensorStats {
                sensor_id: sensor.sensor_id,
                count: count(sensor.count),
                temperature: Some(stats(sensor.temperature)),
                humidity: Some(stats(sensor.humidity)),
                pressure: Some(stats(sensor.pressure)),
            })
            .collect(),
    }
}

fn stats(stats: sensors::Stats) -> pb::Stats {
    pb::Stats {
        count: count(stats.count),
        min: stats.min,
        max: stats.max,
        mean: stats.mean,
        stddev: stats.stddev,
    }
}

fn count(count: u64) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}
