//! Serde adapter for durations written as humans write them in YAML: `10s`, `500ms`, `24h`.

use std::time::Duration;

use serde::{Deserialize, Deserializer, de::Error as _};

pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    humantime::parse_duration(text.trim()).map_err(|err| {
        D::Error::custom(format!(
            "invalid duration {text:?} ({err}); write it like 10s, 500ms or 24h"
        ))
    })
}
