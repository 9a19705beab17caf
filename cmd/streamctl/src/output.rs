//! What goes to standard output: one human line per record, or with `--json` one JSON object
//! per line, so a script reads records with any line-oriented tool.
//!
//! Times are printed in UTC (`2026-01-02 15:04:05`), formatted here from unix seconds: a
//! date library would be a large dependency for one conversion, and a time zone database is
//! not worth it for a log-like display.

use std::io::{self, Write as _};

use serde_json::Value;

use crate::Failure;

/// Where records go, and in which form.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Output {
    json: bool,
}

impl Output {
    pub(crate) fn new(json: bool) -> Self {
        Self { json }
    }

    /// Prints one record: `human()` as a line, or `json()` as one compact JSON line.
    /// Each line is flushed at once, so a reader of a pipe sees records as they come.
    pub(crate) fn record(
        &self,
        human: impl FnOnce() -> String,
        json: impl FnOnce() -> Value,
    ) -> Result<(), Failure> {
        let line = if self.json {
            json().to_string()
        } else {
            human()
        };
        let mut stdout = io::stdout().lock();
        writeln!(stdout, "{line}")
            .and_then(|()| stdout.flush())
            .map_err(|err| {
                if err.kind() == io::ErrorKind::BrokenPipe {
                    Failure::OutputClosed
                } else {
                    Failure::Local(anyhow::Error::new(err).context("writing to standard output"))
                }
            })
    }
}

/// `2026-01-02 15:04:05` (UTC) for a protobuf timestamp; `-` when there is none.
pub(crate) fn human_time(timestamp: Option<&prost_types::Timestamp>) -> String {
    match timestamp {
        Some(timestamp) => {
            let civil = Civil::from_unix(timestamp.seconds);
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
                civil.year, civil.month, civil.day, civil.hour, civil.minute, civil.second
            )
        }
        None => "-".to_owned(),
    }
}

/// RFC 3339 in UTC with nanoseconds (`2026-01-02T15:04:05.000000000Z`) for `--json`;
/// JSON `null` when there is no timestamp.
pub(crate) fn json_time(timestamp: Option<&prost_types::Timestamp>) -> Value {
    match timestamp {
        Some(timestamp) => {
            let civil = Civil::from_unix(timestamp.seconds);
            Value::String(format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z",
                civil.year,
                civil.month,
                civil.day,
                civil.hour,
                civil.minute,
                civil.second,
                timestamp.nanos.clamp(0, 999_999_999)
            ))
        }
        None => Value::Null,
    }
}

/// A UTC calendar date and time of day.
#[derive(Debug, PartialEq, Eq)]
struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
}

impl Civil {
    /// Howard Hinnant's `civil_from_days`: exact for every day of the proleptic Gregorian
    /// calendar, with no table and no loop.
    fn from_unix(seconds: i64) -> Self {
        let days = seconds.div_euclid(86_400);
        let of_day = seconds.rem_euclid(86_400);
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let day_of_era = z.rem_euclid(146_097);
        let year_of_era =
            (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
        let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
        let shifted_month = (5 * day_of_year + 2) / 153; // March = 0
        let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
        let month = if shifted_month < 10 {
            shifted_month + 3
        } else {
            shifted_month - 9
        };
        let year = year_of_era + era * 400 + i64::from(month <= 2);
        // Every value below is in range by construction (day 1..=31, month 1..=12, ...).
        let small = |value: i64| u32::try_from(value).unwrap_or_default();
        Self {
            year,
            month: small(month),
            day: small(day),
            hour: small(of_day / 3600),
            minute: small(of_day % 3600 / 60),
            second: small(of_day % 60),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64, nanos: i32) -> prost_types::Timestamp {
        prost_types::Timestamp { seconds, nanos }
    }

    #[test]
    fn formats_known_instants() {
        assert_eq!(human_time(Some(&at(0, 0))), "1970-01-01 00:00:00");
        assert_eq!(
            human_time(Some(&at(1_767_366_245, 0))),
            "2026-01-02 15:04:05"
        );
        // A leap day and the last second of a century year that is not a leap year.
        assert_eq!(human_time(Some(&at(951_782_400, 0))), "2000-02-29 00:00:00");
        assert_eq!(
            human_time(Some(&at(4_107_542_399, 0))),
            "2100-02-28 23:59:59"
        );
        assert_eq!(human_time(Some(&at(-1, 0))), "1969-12-31 23:59:59");
        assert_eq!(human_time(None), "-");
        assert_eq!(
            json_time(Some(&at(1_767_366_245, 5))),
            "2026-01-02T15:04:05.000000005Z"
        );
    }

    #[test]
    fn agrees_with_counting_days_one_by_one() {
        // Walk 1970-01-01 .. 2400-01-01 a day at a time with the calendar rules spelled out.
        let (mut year, mut month, mut day) = (1970_i64, 1_u32, 1_u32);
        let leap = |y: i64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        for days in 0..157_054_i64 {
            let civil = Civil::from_unix(days * 86_400 + 3_661);
            assert_eq!(
                (
                    civil.year,
                    civil.month,
                    civil.day,
                    civil.hour,
                    civil.minute,
                    civil.second
                ),
                (year, month, day, 1, 1, 1),
                "day {days}"
            );
            let length = match month {
                2 if leap(year) => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            day += 1;
            if day > length {
                day = 1;
                month += 1;
                if month > 12 {
                    month = 1;
                    year += 1;
                }
            }
        }
    }
}
