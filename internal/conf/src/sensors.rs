//! `sensors:` the limits of CollectSensorData.

use serde::Deserialize;

/// `sensors`: what a plausible reading is, and how much one stream may track.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SensorsConf {
    /// Plausible temperatures in °C; readings outside are rejected and counted.
    pub temperature_range: RangeConf,
    /// Plausible relative humidity in %.
    pub humidity_range: RangeConf,
    /// Plausible pressure in hPa.
    pub pressure_range: RangeConf,
    /// Most distinct sensors one stream may report; more → `RESOURCE_EXHAUSTED`.
    pub max_sensors: usize,
}

/// An inclusive range of plausible values.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RangeConf {
    pub min: f64,
    pub max: f64,
}

impl Default for SensorsConf {
    fn default() -> Self {
        Self {
            temperature_range: RangeConf {
                min: -100.0,
                max: 200.0,
            },
            humidity_range: RangeConf {
                min: 0.0,
                max: 100.0,
            },
            pressure_range: RangeConf {
                min: 0.0,
                max: 2000.0,
            },
            max_sensors: 10_000,
        }
    }
}
