//! Parsing of the `grpc-timeout` request header (gRPC over HTTP/2, "Timeout").

use std::time::Duration;

use http::HeaderMap;

/// The client's deadline as a duration from now, or `None` when the header is absent or
/// malformed (the spec has servers ignore a malformed timeout, as tonic does).
pub(crate) fn parse(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get("grpc-timeout")?.to_str().ok()?;
    // TimeoutValue is 1 to 8 ASCII digits followed by one unit letter.
    if value.len() < 2 || value.len() > 9 {
        return None;
    }
    let (digits, unit) = value.split_at(value.len() - 1);
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount.checked_mul(3600)?),
        "M" => Duration::from_secs(amount.checked_mul(60)?),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("grpc-timeout", value.parse().expect("valid header value"));
        headers
    }

    #[test]
    fn parses_every_unit() {
        let cases = [
            ("2H", Duration::from_secs(7200)),
            ("3M", Duration::from_secs(180)),
            ("5S", Duration::from_secs(5)),
            ("250m", Duration::from_millis(250)),
            ("7u", Duration::from_micros(7)),
            ("99999999n", Duration::from_nanos(99_999_999)),
        ];
        for (text, expected) in cases {
            assert_eq!(parse(&header(text)), Some(expected), "grpc-timeout {text}");
        }
    }

    #[test]
    fn ignores_malformed_values() {
        for text in ["", "S", "123456789S", "12x", "-1S", "1.5S", "10s"] {
            assert_eq!(parse(&header(text)), None, "grpc-timeout {text:?}");
        }
        assert_eq!(parse(&HeaderMap::new()), None);
    }
}
