//! Statistics over a stream of sensor readings (CollectSensorData).
//!
//! Streams can be long and their values large (a pressure in pascals, a temperature offset by
//! a calibration constant), so sums of squares would cancel catastrophically. Every statistic
//! is kept with Welford's online algorithm: O(1) per reading, numerically stable, memory
//! O(number of sensors) whatever the number of readings. Implausible readings are rejected and
//! counted; they never end the stream.

use std::{
    collections::{HashMap, hash_map::Entry},
    ops::RangeInclusive,
    time::SystemTime,
};

use crate::{Error, Result};

/// Longest accepted sensor id, in bytes: ids are kept per sensor, so they must be bounded.
pub const MAX_SENSOR_ID_BYTES: usize = 128;

/// What a plausible reading is, and how many sensors one stream may track.
#[derive(Debug, Clone)]
pub struct SensorLimits {
    pub temperature: RangeInclusive<f64>,
    pub humidity: RangeInclusive<f64>,
    pub pressure: RangeInclusive<f64>,
    pub max_sensors: usize,
}

/// When a reading was taken, as the client reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadingTime {
    /// The reading carries this timestamp.
    At(SystemTime),
    /// The reading carries no timestamp: the server's receive time stands in for it.
    Unstamped,
    /// The reading carries a timestamp no clock can represent; the reading is rejected.
    Unrepresentable,
}

/// One reading of one sensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub sensor_id: String,
    pub temperature: f64,
    pub humidity: f64,
    pub pressure: f64,
    pub time: ReadingTime,
}

/// Welford's running count, mean and sum of squared deviations, plus min and max.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Welford {
    count: u64,
    mean: f64,
    m2: f64,
    min: f64,
    max: f64,
}

impl Welford {
    /// Adds one value.
    pub fn push(&mut self, value: f64) {
        self.count += 1;
        if self.count == 1 {
            self.min = value;
            self.max = value;
        } else {
            self.min = self.min.min(value);
            self.max = self.max.max(value);
        }
        let delta = value - self.mean;
        self.mean += delta / self.count as f64;
        self.m2 += delta * (value - self.mean);
    }

    /// The statistics so far; all zero when nothing was pushed.
    pub fn stats(&self) -> Stats {
        if self.count == 0 {
            return Stats::default();
        }
        Stats {
            count: self.count,
            min: self.min,
            max: self.max,
            mean: self.mean,
            // Rounding can leave m2 a hair below 0 for constant input.
            stddev: (self.m2.max(0.0) / self.count as f64).sqrt(),
        }
    }
}

/// Summary statistics of one metric.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Stats {
    pub count: u64,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    /// Population standard deviation.
    pub stddev: f64,
}

#[derive(Debug, Clone, Copy, Default)]
struct Metrics {
    temperature: Welford,
    humidity: Welford,
    pressure: Welford,
}

impl Metrics {
    fn push(&mut self, reading: &Reading) {
        self.temperature.push(reading.temperature);
        self.humidity.push(reading.humidity);
        self.pressure.push(reading.pressure);
    }
}

/// Statistics of one sensor.
#[derive(Debug, Clone, PartialEq)]
pub struct SensorStats {
    pub sensor_id: String,
    pub count: u64,
    pub temperature: Stats,
    pub humidity: Stats,
    pub pressure: Stats,
}

/// What a finished stream amounts to.
#[derive(Debug, Clone, PartialEq)]
pub struct SensorSummary {
    /// Accepted readings.
    pub accepted: u64,
    pub rejected: u64,
    pub temperature: Stats,
    pub humidity: Stats,
    pub pressure: Stats,
    /// Earliest and latest time among accepted readings; `None` when there were none.
    pub start_time: Option<SystemTime>,
    pub end_time: Option<SystemTime>,
    /// Per sensor, sorted by sensor id.
    pub sensors: Vec<SensorStats>,
}

/// Why a reading was rejected (for the log; the client sees only the count).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    EmptySensorId,
    SensorIdTooLong,
    NotFinite,
    OutOfRange,
    BadTimestamp,
}

/// The running aggregate of one stream.
#[derive(Debug)]
pub struct SensorAggregate {
    limits: SensorLimits,
    overall: Metrics,
    per_sensor: HashMap<String, Metrics>,
    rejected: u64,
    start_time: Option<SystemTime>,
    end_time: Option<SystemTime>,
}

impl SensorAggregate {
    pub fn new(limits: SensorLimits) -> Self {
        Self {
            limits,
            overall: Metrics::default(),
            per_sensor: HashMap::new(),
            rejected: 0,
            start_time: None,
            end_time: None,
        }
    }

    /// Records `reading`, received at `received_at` (used when the reading has no timestamp).
    /// Returns whether it was accepted; fails only with [`Error::TooManySensors`] when it names
    /// one sensor more than the limit allows.
    pub fn record(
        &mut self,
        reading: &Reading,
        received_at: SystemTime,
    ) -> Result<Result<(), Rejection>> {
        let verdict = self.check(reading);
        let at = match (verdict, reading.time) {
            (Err(rejection), _) => {
                self.rejected += 1;
                return Ok(Err(rejection));
            }
            (Ok(()), ReadingTime::At(at)) => at,
            (Ok(()), _) => received_at,
        };
        let limit = self.limits.max_sensors;
        let sensor_count = self.per_sensor.len();
        let metrics = match self.per_sensor.entry(reading.sensor_id.clone()) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(_) if sensor_count >= limit => {
                return Err(Error::TooManySensors { limit });
            }
            Entry::Vacant(entry) => entry.insert(Metrics::default()),
        };
        metrics.push(reading);
        self.overall.push(reading);
        self.start_time = Some(self.start_time.map_or(at, |start| start.min(at)));
        self.end_time = Some(self.end_time.map_or(at, |end| end.max(at)));
        Ok(Ok(()))
    }

    fn check(&self, reading: &Reading) -> Result<(), Rejection> {
        if reading.sensor_id.is_empty() {
            return Err(Rejection::EmptySensorId);
        }
        if reading.sensor_id.len() > MAX_SENSOR_ID_BYTES {
            return Err(Rejection::SensorIdTooLong);
        }
        let values = [reading.temperature, reading.humidity, reading.pressure];
        if !values.iter().all(|value| value.is_finite()) {
            return Err(Rejection::NotFinite);
        }
        let limits = &self.limits;
        if !(limits.temperature.contains(&reading.temperature)
            && limits.humidity.contains(&reading.humidity)
            && limits.pressure.contains(&reading.pressure))
        {
            return Err(Rejection::OutOfRange);
        }
        if reading.time == ReadingTime::Unrepresentable {
            return Err(Rejection::BadTimestamp);
        }
        Ok(())
    }

    /// The summary of everything recorded; zeros (never NaN) for an empty stream.
    pub fn summary(&self) -> SensorSummary {
        let mut sensors: Vec<SensorStats> = self
            .per_sensor
            .iter()
            .map(|(sensor_id, metrics)| SensorStats {
                sensor_id: sensor_id.clone(),
                count: metrics.temperature.count,
                temperature: metrics.temperature.stats(),
                humidity: metrics.humidity.stats(),
                pressure: metrics.pressure.stats(),
            })
            .collect();
        sensors.sort_unstable_by(|a, b| a.sensor_id.cmp(&b.sensor_id));
        SensorSummary {
            accepted: self.overall.temperature.count,
            rejected: self.rejected,
            temperature: self.overall.temperature.stats(),
            humidity: self.overall.humidity.stats(),
            pressure: self.overall.pressure.stats(),
            start_time: self.start_time,
            end_time: self.end_time,
            sensors,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn limits() -> SensorLimits {
        SensorLimits {
            temperature: -100.0..=200.0,
            humidity: 0.0..=100.0,
            pressure: 0.0..=2000.0,
            max_sensors: 3,
        }
    }

    fn reading(sensor_id: &str, temperature: f64, humidity: f64, pressure: f64) -> Reading {
        Reading {
            sensor_id: sensor_id.to_owned(),
            temperature,
            humidity,
            pressure,
            time: ReadingTime::Unstamped,
        }
    }

    fn at(seconds: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(seconds)
    }

    /// Mean and population stddev computed the careful way: a second pass over the values.
    fn two_pass(values: &[f64]) -> (f64, f64) {
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let variance = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
        (mean, variance.sqrt())
    }

    #[test]
    fn welford_matches_a_two_pass_reference_on_a_million_values_with_a_large_offset() {
        // Values 1e6 ± 1: sum-of-squares formulas lose every significant digit here.
        let seed = 0x5EED_u64;
        println!("seed {seed:#x}");
        let mut state = seed;
        let values: Vec<f64> = (0..1_000_000)
            .map(|_| {
                // xorshift64: enough spread for the test, reproducible from the printed seed.
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                1.0e6 + ((state >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
            })
            .collect();
        let mut welford = Welford::default();
        for &value in &values {
            welford.push(value);
        }
        let stats = welford.stats();
        let (mean, stddev) = two_pass(&values);
        assert_eq!(stats.count, 1_000_000);
        assert!(
            ((stats.mean - mean) / mean).abs() < 1e-12,
            "mean {} vs {mean}",
            stats.mean
        );
        assert!(
            ((stats.stddev - stddev) / stddev).abs() < 1e-8,
            "stddev {} vs {stddev}",
            stats.stddev
        );
        // Uniform on [-1, 1]: stddev 1/sqrt(3).
        assert!((stddev - 1.0 / 3f64.sqrt()).abs() < 1e-2, "{stddev}");
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        assert_eq!((stats.min, stats.max), (min, max));
    }

    #[test]
    fn an_empty_stream_summarises_to_zeros() {
        let summary = SensorAggregate::new(limits()).summary();
        assert_eq!(summary.accepted, 0);
        assert_eq!(summary.temperature, Stats::default());
        assert!(!summary.temperature.mean.is_nan() && !summary.temperature.stddev.is_nan());
        assert_eq!(summary.start_time, None);
        assert!(summary.sensors.is_empty());
    }

    #[test]
    fn readings_are_summarised_overall_and_per_sensor() {
        let mut aggregate = SensorAggregate::new(limits());
        let received = at(500);
        let mut stamped = reading("b", 20.0, 40.0, 1000.0);
        stamped.time = ReadingTime::At(at(100));
        aggregate
            .record(&stamped, received)
            .expect("ok")
            .expect("accepted");
        let mut later = reading("a", 30.0, 60.0, 1010.0);
        later.time = ReadingTime::At(at(200));
        aggregate
            .record(&later, received)
            .expect("ok")
            .expect("accepted");
        let mut earlier = reading("b", 10.0, 50.0, 990.0);
        earlier.time = ReadingTime::At(at(50));
        aggregate
            .record(&earlier, received)
            .expect("ok")
            .expect("accepted");

        let summary = aggregate.summary();
        assert_eq!(summary.accepted, 3);
        assert_eq!(summary.rejected, 0);
        assert_eq!(summary.temperature.mean, 20.0);
        assert_eq!(
            (summary.temperature.min, summary.temperature.max),
            (10.0, 30.0)
        );
        assert!((summary.temperature.stddev - (200.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert_eq!(summary.humidity.mean, 50.0);
        assert_eq!(summary.pressure.mean, 1000.0);
        assert_eq!(summary.start_time, Some(at(50)), "earliest, not first");
        assert_eq!(summary.end_time, Some(at(200)));
        let ids: Vec<&str> = summary
            .sensors
            .iter()
            .map(|s| s.sensor_id.as_str())
            .collect();
        assert_eq!(ids, ["a", "b"]);
        let b = &summary.sensors[1];
        assert_eq!(b.count, 2);
        assert_eq!(b.temperature.mean, 15.0);
        assert_eq!(b.temperature.stddev, 5.0);
        assert_eq!(b.pressure.min, 990.0);

        // An unstamped reading counts at its receive time.
        aggregate
            .record(&reading("a", 0.0, 0.0, 0.0), at(300))
            .expect("ok")
            .expect("accepted");
        assert_eq!(aggregate.summary().end_time, Some(at(300)));
    }

    #[test]
    fn implausible_readings_are_counted_and_left_out() {
        let mut aggregate = SensorAggregate::new(limits());
        let long_id = "x".repeat(MAX_SENSOR_ID_BYTES + 1);
        let mut unrepresentable = reading("s", 1.0, 1.0, 1.0);
        unrepresentable.time = ReadingTime::Unrepresentable;
        let cases = [
            (reading("", 1.0, 1.0, 1.0), Rejection::EmptySensorId),
            (reading(&long_id, 1.0, 1.0, 1.0), Rejection::SensorIdTooLong),
            (reading("s", f64::NAN, 1.0, 1.0), Rejection::NotFinite),
            (reading("s", 1.0, f64::INFINITY, 1.0), Rejection::NotFinite),
            (
                reading("s", 1.0, 1.0, f64::NEG_INFINITY),
                Rejection::NotFinite,
            ),
            (reading("s", -100.5, 1.0, 1.0), Rejection::OutOfRange),
            (reading("s", 200.5, 1.0, 1.0), Rejection::OutOfRange),
            (reading("s", 1.0, -0.1, 1.0), Rejection::OutOfRange),
            (reading("s", 1.0, 100.1, 1.0), Rejection::OutOfRange),
            (reading("s", 1.0, 1.0, -1.0), Rejection::OutOfRange),
            (reading("s", 1.0, 1.0, 2000.5), Rejection::OutOfRange),
            (unrepresentable, Rejection::BadTimestamp),
        ];
        for (bad, expected) in &cases {
            let verdict = aggregate.record(bad, at(1)).expect("never fatal");
            assert_eq!(verdict, Err(*expected), "{bad:?}");
        }
        // The bounds themselves are plausible.
        aggregate
            .record(&reading("s", -100.0, 0.0, 0.0), at(1))
            .expect("ok")
            .expect("accepted");
        aggregate
            .record(&reading("s", 200.0, 100.0, 2000.0), at(1))
            .expect("ok")
            .expect("accepted");
        let summary = aggregate.summary();
        assert_eq!(summary.rejected, cases.len() as u64);
        assert_eq!(summary.accepted, 2);
        assert_eq!(summary.temperature.mean, 50.0);
    }

    #[test]
    fn one_sensor_too_many_ends_the_stream() {
        let mut aggregate = SensorAggregate::new(limits());
        for id in ["a", "b", "c", "a"] {
            aggregate
                .record(&reading(id, 1.0, 1.0, 1.0), at(1))
                .expect("within the limit")
                .expect("accepted");
        }
        let err = aggregate
            .record(&reading("d", 1.0, 1.0, 1.0), at(1))
            .expect_err("a fourth sensor");
        assert!(matches!(err, Error::TooManySensors { limit: 3 }), "{err}");
        // A rejected reading never counts towards the limit.
        assert_eq!(
            aggregate
                .record(&reading("e", f64::NAN, 1.0, 1.0), at(1))
                .expect("ok"),
            Err(Rejection::NotFinite)
        );
    }
}
