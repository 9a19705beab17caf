//! `sensors:` the limits of CollectSensorData.
//!
//! Ranges are flat `<metric>_min`/`<metric>_max` keys rather than nested `{min, max}` maps so
//! that one bound can be overridden (file or `STREAMHUB__SENSORS__TEMPERATURE_MAX`) while the
//! other keeps its default.

use serde::Deserialize;

use crate::load::{ConfError, bad};

/// `sensors`: what a plausible reading is, and how much one stream may track. Readings outside
/// a range (bounds included) are rejected and counted.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SensorsConf {
    /// Lowest plausible temperature, °C.
    pub temperature_min: f64,
    /// Highest plausible temperature, °C.
    pub temperature_max: f64,
    /// Lowest plausible relative humidity, %.
    pub humidity_min: f64,
    /// Highest plausible relative humidity, %.
    pub humidity_max: f64,
    /// Lowest plausible pressure, hPa.
    pub pressure_min: f64,
    /// Highest plausible pressure, hPa.
    pub pressure_max: f64,
    /// Most distinct sensors one stream may report; more → `RESOURCE_EXHAUSTED`.
    pub max_sensors: usize,
}

impl Default for SensorsConf {
    fn default() -> Self {
        Self {
            temperature_min: -100.0,
            temperature_max: 200.0,
            humidity_min: 0.0,
            humidity_max: 100.0,
            pressure_min: 0.0,
            pressure_max: 2000.0,
            max_sensors: 10_000,
        }
    }
}

impl SensorsConf {
    pub(crate) fn validate(&self) -> Result<(), ConfError> {
        if self.max_sensors == 0 {
            return Err(bad("sensors.max_sensors", "must be greater than 0"));
        }
        let ranges = [
            (
                "sensors.temperature_min",
                self.temperature_min,
                self.temperature_max,
            ),
            ("sensors.humidity_min", self.humidity_min, self.humidity_max),
            ("sensors.pressure_min", self.pressure_min, self.pressure_max),
        ];
        for (key, min, max) in ranges {
            if !(min.is_finite() && max.is_finite() && min <= max) {
                return Err(bad(
                    key,
                    format!("{min} must be finite and at most the matching _max ({max})"),
                ));
            }
        }
        Ok(())
    }
}
