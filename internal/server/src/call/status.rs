//! Status rewriting: where tonic's `grpc-status` differs from the gRPC spec, the spec's code,
//! and a message cut to a size a trailer can carry.

use http::{HeaderMap, HeaderValue};
use tonic::{Code, Status};

/// Longest status message sent, in bytes; longer ones are cut and end with `…`.
pub(crate) const MAX_STATUS_MESSAGE_BYTES: usize = 1024;

/// Reads the `grpc-status` of `headers` (trailers, or the headers of a trailers-only
/// response) and rewrites it where tonic differs from the spec: an oversized message is
/// `RESOURCE_EXHAUSTED` (tonic: `OUT_OF_RANGE`), an undecodable one `INVALID_ARGUMENT`
/// (tonic: `INTERNAL`), and a message over [`MAX_STATUS_MESSAGE_BYTES`] is cut.
pub(super) fn spec_status(headers: &mut HeaderMap) -> Option<Code> {
    let status = Status::from_header_map(headers)?;
    let message = status.message();
    let over_limit = status.code() == Code::OutOfRange
        && (message.starts_with("Error, decoded message length too large")
            || message.starts_with("Error, encoded message length too large"));
    // The client's own fault, however tonic files it: bytes that are not the message type,
    // a unary call without its message, a stream cut inside a message.
    let undecodable = status.code() == Code::Internal
        && (message.starts_with("failed to decode Protobuf message")
            || message == "Missing request message."
            || message == "Unexpected EOF decoding stream.");
    let code = if over_limit {
        Code::ResourceExhausted
    } else if undecodable {
        Code::InvalidArgument
    } else {
        status.code()
    };
    if code != status.code() {
        headers.insert("grpc-status", HeaderValue::from(code as i32));
    }
    if message.len() > MAX_STATUS_MESSAGE_BYTES {
        let cut = Status::new(code, truncated(message, MAX_STATUS_MESSAGE_BYTES));
        headers.remove("grpc-message");
        // A status built from a valid code and a UTF-8 message always encodes.
        let _ = cut.add_header(headers);
    }
    Some(code)
}

/// `message` cut to at most `max` bytes on a char boundary, marked with `…` when cut.
fn truncated(message: &str, max: usize) -> String {
    if message.len() <= max {
        return message.to_owned();
    }
    let mark = "…";
    let mut end = max - mark.len();
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{mark}", &message[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oversized_message_status_becomes_resource_exhausted() {
        let mut headers = HeaderMap::new();
        Status::out_of_range(
            "Error, decoded message length too large: found 9 bytes, the limit is: 4 bytes",
        )
        .add_header(&mut headers)
        .expect("encodable status");
        assert_eq!(spec_status(&mut headers), Some(Code::ResourceExhausted));
        assert_eq!(
            Status::from_header_map(&headers).map(|s| s.code()),
            Some(Code::ResourceExhausted)
        );
    }

    #[test]
    fn undecodable_messages_are_invalid_argument() {
        let mut headers = HeaderMap::new();
        Status::internal(
            "failed to decode Protobuf message: ChatMessage.user_id: invalid string value: data is not UTF-8 encoded",
        )
        .add_header(&mut headers)
        .expect("encodable status");
        assert_eq!(spec_status(&mut headers), Some(Code::InvalidArgument));
        let status = Status::from_header_map(&headers).expect("a status");
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.message().contains("user_id"), "{}", status.message());
    }

    #[test]
    fn long_status_messages_are_cut_on_a_char_boundary() {
        let mut headers = HeaderMap::new();
        let long = format!("room_id {:?} is too long", "é".repeat(5000));
        Status::invalid_argument(long.clone())
            .add_header(&mut headers)
            .expect("encodable status");
        assert_eq!(spec_status(&mut headers), Some(Code::InvalidArgument));
        let status = Status::from_header_map(&headers).expect("a status");
        assert!(
            status.message().len() <= MAX_STATUS_MESSAGE_BYTES,
            "{} bytes",
            status.message().len()
        );
        assert!(status.message().ends_with('…'), "{}", status.message());
        assert!(long.starts_with(status.message().trim_end_matches('…')));
    }

    #[test]
    fn other_out_of_range_statuses_are_kept() {
        let mut headers = HeaderMap::new();
        Status::out_of_range("offset 10 is beyond the file size 4")
            .add_header(&mut headers)
            .expect("encodable status");
        assert_eq!(spec_status(&mut headers), Some(Code::OutOfRange));
    }
}
