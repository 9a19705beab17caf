//! The seeds' small services: what each reply contains, as the seeds define it.
//!
//! Seeds 002, 003 and 004 are demonstrations whose servers compute every reply from the
//! request alone, so their rules are plain functions here; seed 000's chat shares messages
//! between clients, so it has a hub ([`ConversationHub`]). The handlers in `streamhub-service`
//! only translate protobuf to these types and back.

mod chat;

pub use chat::{ChatLine, ChatMember, ConversationHub};

use crate::{Error, Result};

/// Seed 002's `StreamPoint`: a name and a 32-bit value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Point {
    pub name: String,
    pub value: i32,
}

/// How many points `List` sends: the seed loops `for n := 0; n <= 6; n++`.
pub const LIST_LEN: i32 = 7;

/// Seed 002 `List`: the requested point with value, value+1, ..., value+6.
///
/// The seed adds in Go's `int32`, which wraps; so does this, so a value near `i32::MAX` gives
/// the same sequence the seed's clients already see instead of an error.
pub fn list_points(request: &Point) -> impl Iterator<Item = Point> + Send + 'static {
    let Point { name, value } = request.clone();
    (0..LIST_LEN).map(move |n| Point {
        name: name.clone(),
        value: value.wrapping_add(n),
    })
}

/// Seed 002 `Record`: the one response after the client half-closes. The seed answers with
/// this fixed point whatever it received, and its clients print it; it is kept as is.
pub fn record_reply() -> Point {
    Point {
        name: "gRPC Stream Server: Record".to_owned(),
        value: 1,
    }
}

/// Numbers seed 002 `Route` replies: one per request, counting from 0.
#[derive(Debug, Default)]
pub struct RouteReplies {
    sent: i32,
}

impl RouteReplies {
    /// The reply to the next request. The counter is an `int32` in the seed; it wraps there
    /// and here after 2^31 requests on one stream.
    pub fn next_reply(&mut self) -> Point {
        let reply = Point {
            name: "gRPC Stream Server: Route".to_owned(),
            value: self.sent,
        };
        self.sent = self.sent.wrapping_add(1);
        reply
    }
}

/// Seed 003 (Chatify) `Chat`: the reply to one request names what was received. The seed
/// does not show its server's text; this wording is streamhub's.
pub fn chatify_reply(name: &str) -> String {
    format!("received: {name}")
}

/// How many copies of the request seed 004's `ServerStream` sends (its loop runs `i < 5`).
pub const SERVER_STREAM_COPIES: usize = 5;

/// Seed 004 `ServerStream`: the request's data, [`SERVER_STREAM_COPIES`] times. (The seed's
/// sample output shows a newer server sending "count:N client data: X" twenty times; the code
/// it shows sends the data five times, and the code is what is followed.)
pub fn server_stream_replies(data: &str) -> impl Iterator<Item = String> + Send + 'static {
    std::iter::repeat_n(data.to_owned(), SERVER_STREAM_COPIES)
}

/// How many messages seed 004's `AllStream` server sends by itself.
pub const ALL_STREAM_LEN: usize = 5;

/// Seed 004 `AllStream`: the server's own messages "0" to "4", sent whatever the client
/// sends; the call ends once they are sent and the client has half-closed.
pub fn all_stream_replies() -> impl Iterator<Item = String> + Send + 'static {
    (0..ALL_STREAM_LEN).map(|i| i.to_string())
}

/// Seed 004 `ClientStream`: every received `data`, joined with commas in arrival order
/// (`strings.Join(list, ",")`). Bounded: the joined text may not exceed `limit` bytes, the
/// most one response can carry, so a client streaming without end cannot grow memory.
#[derive(Debug)]
pub struct CommaJoined {
    text: String,
    received: usize,
    limit: usize,
}

impl CommaJoined {
    /// An empty join that refuses to grow past `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self {
            text: String::new(),
            received: 0,
            limit,
        }
    }

    /// Appends one received `data`.
    pub fn push(&mut self, data: &str) -> Result<()> {
        let separator = usize::from(self.received > 0);
        if self.text.len() + separator + data.len() > self.limit {
            return Err(Error::CompatReplyTooLarge { limit: self.limit });
        }
        if separator == 1 {
            self.text.push(',');
        }
        self.text.push_str(data);
        self.received += 1;
        Ok(())
    }

    /// The joined text; empty when nothing was received.
    pub fn finish(self) -> String {
        self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(name: &str, value: i32) -> Point {
        Point {
            name: name.to_owned(),
            value,
        }
    }

    #[test]
    fn list_repeats_the_point_with_seven_consecutive_values() {
        let points: Vec<_> = list_points(&point("List", 1234)).collect();
        let values: Vec<_> = points.iter().map(|p| p.value).collect();
        assert_eq!(values, [1234, 1235, 1236, 1237, 1238, 1239, 1240]);
        assert!(points.iter().all(|p| p.name == "List"));
    }

    #[test]
    fn list_wraps_like_go_int32() {
        let values: Vec<_> = list_points(&point("", i32::MAX - 1))
            .map(|p| p.value)
            .collect();
        assert_eq!(values[..3], [i32::MAX - 1, i32::MAX, i32::MIN]);
    }

    #[test]
    fn route_numbers_replies_from_zero() {
        let mut replies = RouteReplies::default();
        let got: Vec<_> = (0..3).map(|_| replies.next_reply()).collect();
        assert_eq!(
            got,
            [
                point("gRPC Stream Server: Route", 0),
                point("gRPC Stream Server: Route", 1),
                point("gRPC Stream Server: Route", 2),
            ]
        );
    }

    #[test]
    fn record_answers_the_seeds_fixed_point() {
        assert_eq!(record_reply(), point("gRPC Stream Server: Record", 1));
    }

    #[test]
    fn chatify_names_what_it_received() {
        assert_eq!(chatify_reply("Message 0"), "received: Message 0");
    }

    #[test]
    fn server_stream_sends_the_data_five_times() {
        let got: Vec<_> = server_stream_replies("1").collect();
        assert_eq!(got, ["1", "1", "1", "1", "1"]);
    }

    #[test]
    fn all_stream_counts_zero_to_four() {
        let got: Vec<_> = all_stream_replies().collect();
        assert_eq!(got, ["0", "1", "2", "3", "4"]);
    }

    #[test]
    fn client_stream_joins_with_commas_as_the_seed_shows() {
        let mut joined = CommaJoined::new(64);
        for data in ["0", "1", "2", "3", "4"] {
            joined.push(data).expect("within the limit");
        }
        assert_eq!(joined.finish(), "0,1,2,3,4");
        assert_eq!(CommaJoined::new(64).finish(), "");
    }

    #[test]
    fn client_stream_keeps_empty_items_as_the_seed_does() {
        let mut joined = CommaJoined::new(64);
        for data in ["", "a", ""] {
            joined.push(data).expect("within the limit");
        }
        assert_eq!(joined.finish(), ",a,");
    }

    #[test]
    fn client_stream_refuses_to_grow_past_its_limit() {
        let mut joined = CommaJoined::new(5);
        joined.push("ab").expect("2 bytes fit");
        joined.push("cd").expect("5 bytes fit");
        let err = joined.push("").expect_err("a sixth byte does not fit");
        assert!(
            matches!(err, Error::CompatReplyTooLarge { limit: 5 }),
            "{err:?}"
        );
    }
}
