//! What a log entry is and what makes one acceptable.

use std::{
    collections::BTreeMap,
    fmt,
    str::FromStr,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use crate::{Error, Result};

/// Longest accepted message, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// Longest `service` name, in bytes: it is stored with every entry and filtered on.
pub(crate) const MAX_SERVICE_BYTES: usize = 256;
/// Most bytes of `metadata` keys and values together: every entry keeps them forever.
pub(crate) const MAX_METADATA_BYTES: usize = 16 * 1024;

/// Severity of an entry, ordered: `Debug < Info < Warn < Error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Level {
    #[default]
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    /// Every level, least severe first.
    pub const ALL: [Level; 4] = [Level::Debug, Level::Info, Level::Warn, Level::Error];

    /// The canonical (upper-case) name.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
        }
    }

    /// Position in the severity order, 0 for `Debug`; storage keeps this so "at least WARN" is
    /// a range.
    pub fn rank(self) -> u8 {
        self as u8
    }

    /// The level of a [`Level::rank`].
    pub fn from_rank(rank: u8) -> Option<Self> {
        Self::ALL.get(usize::from(rank)).copied()
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Level {
    type Err = Error;

    /// Parses a level name in any case.
    fn from_str(text: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|level| level.as_str().eq_ignore_ascii_case(text))
            .ok_or_else(|| Error::UnknownLevel(text.to_owned()))
    }
}

/// An entry as a writer submits it, validated, before the store gives it an id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLogEntry {
    pub service: String,
    pub level: Level,
    pub message: String,
    pub timestamp: SystemTime,
    pub metadata: BTreeMap<String, String>,
}

impl NewLogEntry {
    /// Validates a submitted entry. `timestamp` defaults to `now` when the writer sent none.
    pub fn new(
        service: String,
        level: &str,
        message: String,
        timestamp: Option<SystemTime>,
        metadata: BTreeMap<String, String>,
        now: SystemTime,
    ) -> Result<Self> {
        if service.is_empty() {
            return Err(invalid("service", "must not be empty"));
        }
        if service.len() > MAX_SERVICE_BYTES {
            return Err(invalid(
                "service",
                format!(
                    "is {} bytes; the limit is {MAX_SERVICE_BYTES}",
                    service.len()
                ),
            ));
        }
        let metadata_bytes: usize = metadata.iter().map(|(k, v)| k.len() + v.len()).sum();
        if metadata_bytes > MAX_METADATA_BYTES {
            return Err(invalid(
                "metadata",
                format!("holds {metadata_bytes} bytes; the limit is {MAX_METADATA_BYTES}"),
            ));
        }
        if level.is_empty() {
            return Err(invalid(
                "level",
                "must not be empty; use DEBUG, INFO, WARN or ERROR",
            ));
        }
        let level = level.parse()?;
        if message.is_empty() {
            return Err(invalid("message", "must not be empty"));
        }
        if message.len() > MAX_MESSAGE_BYTES {
            return Err(invalid(
                "message",
                format!(
                    "is {} bytes; the limit is {MAX_MESSAGE_BYTES}",
                    message.len()
                ),
            ));
        }
        let timestamp = timestamp.unwrap_or(now);
        if unix_nanos(timestamp).is_none() {
            return Err(invalid(
                "timestamp",
                "must lie between 1970-01-01 and 2262-04-11",
            ));
        }
        Ok(Self {
            service,
            level,
            message,
            timestamp,
            metadata,
        })
    }

    /// The stored entry this becomes under `id`.
    pub fn with_id(self, id: i64) -> LogEntry {
        LogEntry {
            id,
            service: self.service,
            level: self.level,
            message: self.message,
            timestamp: self.timestamp,
            metadata: self.metadata,
        }
    }
}

fn invalid(field: &'static str, reason: impl Into<String>) -> Error {
    Error::InvalidLogEntry {
        field,
        reason: reason.into(),
    }
}

/// A stored entry. Ids are assigned by the store, strictly increasing, never reused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub id: i64,
    pub service: String,
    pub level: Level,
    pub message: String,
    pub timestamp: SystemTime,
    pub metadata: BTreeMap<String, String>,
}

/// Which entries a reader wants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogFilter {
    /// Only this service; `None` for all.
    pub service: Option<String>,
    /// Only entries at least this severe.
    pub min_level: Level,
}

impl LogFilter {
    /// Whether `entry` passes the filter.
    pub fn matches(&self, entry: &LogEntry) -> bool {
        entry.level >= self.min_level
            && self
                .service
                .as_deref()
                .is_none_or(|service| service == entry.service)
    }
}

/// `time` as nanoseconds since the Unix epoch, if it lies in `[1970, 2262)`: the range a
/// stored timestamp (an `i64`) and RFC 3339 rendering both cover.
pub fn unix_nanos(time: SystemTime) -> Option<i64> {
    let since = time.duration_since(UNIX_EPOCH).ok()?;
    i64::try_from(since.as_nanos()).ok()
}

/// The inverse of [`unix_nanos`]; negative values (never stored) clamp to the epoch.
pub fn from_unix_nanos(nanos: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(u64::try_from(nanos).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(service: &str, level: &str, message: &str) -> Result<NewLogEntry> {
        NewLogEntry::new(
            service.to_owned(),
            level,
            message.to_owned(),
            None,
            BTreeMap::new(),
            SystemTime::now(),
        )
    }

    fn field_of(result: Result<NewLogEntry>) -> String {
        match result {
            Err(Error::InvalidLogEntry { field, .. }) => field.to_owned(),
            Err(Error::UnknownLevel(_)) => "level".to_owned(),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn levels_parse_in_any_case_and_are_ordered() {
        for (text, level) in [
            ("debug", Level::Debug),
            ("Info", Level::Info),
            ("WARN", Level::Warn),
            ("eRRoR", Level::Error),
        ] {
            assert_eq!(text.parse::<Level>().expect(text), level);
        }
        assert!(Level::Debug < Level::Info && Level::Info < Level::Warn);
        assert!(Level::Warn < Level::Error);
        for level in Level::ALL {
            assert_eq!(Level::from_rank(level.rank()), Some(level));
        }
        assert_eq!(Level::from_rank(4), None);
        assert!(matches!(
            "warning".parse::<Level>(),
            Err(Error::UnknownLevel(text)) if text == "warning"
        ));
    }

    #[test]
    fn validation_names_the_offending_field() {
        assert_eq!(field_of(entry("", "INFO", "m")), "service");
        assert_eq!(field_of(entry("s", "", "m")), "level");
        assert_eq!(field_of(entry("s", "LOUD", "m")), "level");
        assert_eq!(field_of(entry("s", "INFO", "")), "message");
        let long = "x".repeat(MAX_MESSAGE_BYTES + 1);
        assert_eq!(field_of(entry("s", "INFO", &long)), "message");
        let at_limit = "x".repeat(MAX_MESSAGE_BYTES);
        assert!(entry("s", "INFO", &at_limit).is_ok());
        let long_service = "s".repeat(MAX_SERVICE_BYTES + 1);
        assert_eq!(field_of(entry(&long_service, "INFO", "m")), "service");
        let big_metadata = NewLogEntry::new(
            "s".into(),
            "INFO",
            "m".into(),
            None,
            BTreeMap::from([("k".to_owned(), "v".repeat(MAX_METADATA_BYTES))]),
            SystemTime::now(),
        );
        assert_eq!(field_of(big_metadata), "metadata");
        let before_epoch = UNIX_EPOCH - Duration::from_secs(1);
        let result = NewLogEntry::new(
            "s".into(),
            "INFO",
            "m".into(),
            Some(before_epoch),
            BTreeMap::new(),
            SystemTime::now(),
        );
        assert_eq!(field_of(result), "timestamp");
    }

    #[test]
    fn a_missing_timestamp_is_now() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let accepted = NewLogEntry::new("s".into(), "info", "m".into(), None, BTreeMap::new(), now)
            .expect("valid");
        assert_eq!(accepted.timestamp, now);
        assert_eq!(accepted.level, Level::Info);
    }

    #[test]
    fn filter_matches_service_and_minimum_level() {
        let stored = NewLogEntry::new(
            "api".into(),
            "WARN",
            "m".into(),
            None,
            BTreeMap::new(),
            SystemTime::now(),
        )
        .expect("valid")
        .with_id(1);
        let filter = |service: Option<&str>, min_level| LogFilter {
            service: service.map(str::to_owned),
            min_level,
        };
        assert!(filter(None, Level::Debug).matches(&stored));
        assert!(filter(Some("api"), Level::Warn).matches(&stored));
        assert!(!filter(Some("db"), Level::Debug).matches(&stored));
        assert!(!filter(None, Level::Error).matches(&stored));
    }

    #[test]
    fn unix_nanos_round_trips_in_range_only() {
        let time = UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
        let nanos = unix_nanos(time).expect("in range");
        assert_eq!(from_unix_nanos(nanos), time);
        assert_eq!(unix_nanos(UNIX_EPOCH - Duration::from_nanos(1)), None);
        assert_eq!(
            unix_nanos(UNIX_EPOCH + Duration::from_secs(300 * 365 * 24 * 3600)),
            None
        );
    }
}
